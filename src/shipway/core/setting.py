"""One setting's declaration: its key, type, default, help, and the bounds a value must keep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Setting"]


@dataclass(frozen=True, slots=True)
class Setting:
    key: str  # dotted: "serve.port" is `port` under `[serve]` in shipway.toml
    type: type
    default: Any
    help: str
    flag: str | None = None  # the `shipway serve` flag, when there is one
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
