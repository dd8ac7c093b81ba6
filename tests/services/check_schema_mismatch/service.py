"""Broken on purpose (tests/test_templates_check.py): predict returns a probability above 1."""

from pydantic import BaseModel, Field


class Message(BaseModel):
    text: str


class Prediction(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)


def predict(message: Message) -> Prediction:
    # A score, not a probability: the schema says one thing and predict does another.
    return Prediction.model_construct(label="spam", probability=len(message.text) * 1.5)


example = Message(text="win a prize")
