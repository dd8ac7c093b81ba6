"""Broken on purpose (tests/test_templates_check.py): the manifest lists a file that is not there."""

import json
from pathlib import Path

from pydantic import BaseModel


class Message(BaseModel):
    text: str


def load(artifacts: Path) -> dict[str, float]:
    return json.loads((artifacts / "model.json").read_text())


def predict(model: dict[str, float], message: Message) -> float:
    return model.get(message.text, 0.0)


example = Message(text="hello")
