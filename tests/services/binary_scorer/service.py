"""A stand-in binary scorer for the metrics tests: the text "0.83" scores 0.83."""

from pydantic import BaseModel


class Message(BaseModel):
    text: str


class Score(BaseModel):
    score: float


def predict(message: Message) -> Score:
    return Score(score=float(message.text))


example = Message(text="0.5")
default = Score(score=0.0)
