"""A one-number model for the deployment tests: the artifacts hold the scale."""

import os
from pathlib import Path

from pydantic import BaseModel


class Item(BaseModel):
    x: float


class Answer(BaseModel):
    label: str
    y: float
    pid: int


def load(artifacts: Path) -> float:
    return float((artifacts / "scale.txt").read_text())


def predict(scale: float, item: Item) -> Answer:
    y = item.x * scale
    return Answer(label="big" if y >= 10 else "small", y=y, pid=os.getpid())


example = Item(x=1.0)
