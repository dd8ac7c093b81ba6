"""Broken on purpose (tests/test_templates_check.py): load() raises."""

from pydantic import BaseModel


class Message(BaseModel):
    text: str


def load() -> object:
    raise RuntimeError("no GPU found; this model needs CUDA")


def predict(model: object, message: Message) -> Message:
    return message


example = Message(text="hello")
