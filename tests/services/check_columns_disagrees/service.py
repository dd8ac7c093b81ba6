"""Broken on purpose (tests/templates/test_templates_check.py): predict_columns rounds, predict
does not."""

from pydantic import BaseModel


class Message(BaseModel):
    text: str


class Score(BaseModel):
    score: float


def predict(message: Message) -> Score:
    return Score(score=len(message.text) / 7)


def predict_columns(messages: list[Message]) -> dict[str, list[float]]:
    return {"score": [round(len(m.text) / 7, 2) for m in messages]}


example = Message(text="hello")
examples = [example, Message(text="a longer message")]
