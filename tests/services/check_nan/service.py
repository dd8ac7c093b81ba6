"""Broken on purpose (tests/test_templates_check.py): a NaN score, which JSON turns into null."""

from pydantic import BaseModel


class Message(BaseModel):
    text: str


class Score(BaseModel):
    score: float


def predict(message: Message) -> Score:
    return Score(score=float("nan"))


example = Message(text="hello")
