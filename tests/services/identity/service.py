"""The identity service of the benchmarks: predict returns its input."""

from pydantic import BaseModel


class Message(BaseModel):
    text: str


def predict(message: Message) -> Message:
    return message


example = Message(text="warm-up")
