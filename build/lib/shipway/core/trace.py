"""Trace: what each stage of one run received, returned and how long it took."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_jsonable_python

from shipway.core.decided import Decided

__all__ = ["StageRecord", "Trace"]


@dataclass(slots=True)
class StageRecord:
    """One stage's part in a run."""

    name: str
    kind: str
    input: Any
    output: Any = None
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "kind": self.kind,
            "input": _jsonable(self.input),
            "output": _jsonable(self.output),
            "ms": round(self.seconds * 1000, 4),
            "error": self.error,
        }


@dataclass(slots=True)
class Trace:
    """The stages of one prediction, in order, with the ids that tie it to versions."""

    stages: list[StageRecord] = field(default_factory=list)
    ids: dict[str, str | None] = field(default_factory=dict)

    def stage(self, name: str) -> StageRecord:
        for record in self.stages:
            if record.name == name:
                return record
        names = ", ".join(r.name for r in self.stages)
        raise KeyError(f"no stage {name!r} in this trace; its stages are: {names}")

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ids": dict(self.ids),
            "ms": round(self.seconds * 1000, 4),
            "stages": [r.to_dict() for r in self.stages],
        }


def _jsonable(value: Any) -> Any:
    # A trace must always render, even when a stage returned something odd.
    if isinstance(value, Decided):
        value = value.to_dict()
    return to_jsonable_python(value, fallback=repr)
