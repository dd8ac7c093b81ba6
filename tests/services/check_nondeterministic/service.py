"""Broken on purpose (tests/test_templates_check.py): the answer changes from call to call."""

import random

from pydantic import BaseModel


class Message(BaseModel):
    text: str


class Score(BaseModel):
    score: float


def predict(message: Message) -> Score:
    return Score(score=random.random())


example = Message(text="hello")
