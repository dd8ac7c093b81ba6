"""A sampling service that says so (tests/test_templates_check.py): check accepts it."""

import random

from pydantic import BaseModel


class Message(BaseModel):
    text: str


class Score(BaseModel):
    score: float


def predict(message: Message) -> Score:
    return Score(score=random.random())


example = Message(text="hello")
deterministic = False
