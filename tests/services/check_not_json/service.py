"""Broken on purpose (tests/test_templates_check.py): predict returns an object JSON cannot hold."""

from typing import Any


class Embedding:
    def __init__(self, values: list[float]) -> None:
        self.values = values


def predict(item: dict[str, Any]) -> Any:
    return {"embedding": Embedding([0.1, 0.2])}


example = {"text": "hello"}
