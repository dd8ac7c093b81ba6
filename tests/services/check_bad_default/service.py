"""Broken on purpose (tests/test_templates_check.py): the default answer is not an output."""

from pydantic import BaseModel


class Message(BaseModel):
    text: str


class Prediction(BaseModel):
    label: str
    probability: float


def predict(message: Message) -> Prediction:
    return Prediction(label="ok", probability=0.9)


example = Message(text="hello")
default = {"label": "unknown"}
