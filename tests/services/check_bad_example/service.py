"""Broken on purpose (tests/test_templates_check.py): the example is not a valid input."""

from pydantic import BaseModel, Field


class Message(BaseModel):
    text: str = Field(min_length=1)


def predict(message: Message) -> str:
    return message.text.upper()


example = {"txt": "hello"}
