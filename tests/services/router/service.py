"""A stand-in intent model for the rules tests: "card_arrival 0.9" predicts card_arrival at 0.9."""

from pydantic import BaseModel


class Message(BaseModel):
    text: str
    customer_id: str = "anonymous"


class Intent(BaseModel):
    intent: str
    probability: float


def predict(message: Message) -> Intent:
    intent, _, probability = message.text.partition(" ")
    return Intent(intent=intent, probability=float(probability or 1.0))


example = Message(text="card_arrival 0.9")
default = Intent(intent="unknown", probability=0.0)
