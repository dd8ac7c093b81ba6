"""Gates: a check a candidate pipeline must pass before it replaces the live one.

Serving calls a `Gate` before it swaps in new rules or a new model; the
validation capability provides one that runs the project's suites. The type
lives here, below both, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipway.core.pipeline import Pipeline

__all__ = ["Gate", "GateResult"]


@dataclass
class GateResult:
    """`ok` lets the candidate through; `summary` says why not; `report` is the full detail."""

    ok: bool
    summary: str
    report: dict[str, Any] = field(default_factory=dict)


Gate = Callable[[Pipeline], GateResult]
