"""A service that misbehaves on request, for the fault tests."""

import os
import time
from pathlib import Path

from pydantic import BaseModel


class Query(BaseModel):
    text: str
    sleep_s: float = 0.0


class Answer(BaseModel):
    text: str
    pid: int
    loaded_in: int


def load(artifacts: Path) -> dict:
    return {"loaded_in": os.getpid()}


def predict_batch(state: dict, queries: list[Query]) -> list[Answer]:
    for q in queries:
        if q.text == "raise":
            raise RuntimeError("predict exploded on purpose")
        if q.text == "die":
            os._exit(17)  # a worker killed mid-request
        if q.sleep_s:
            time.sleep(q.sleep_s)
    return [Answer(text=q.text.upper(), pid=os.getpid(), loaded_in=state["loaded_in"]) for q in queries]


def redact(record: dict) -> dict:
    record["inputs"]["text"] = "***"
    return record


example = Query(text="warm-up")

default = Answer(text="DEFAULT", pid=0, loaded_in=0)
