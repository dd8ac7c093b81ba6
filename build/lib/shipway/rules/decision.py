"""Decision: what the rules decided for one prediction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Decision"]


@dataclass(slots=True)
class Decision:
    """The outcome of a rule set for one prediction.

    `set` holds output fields to override; `fallback` says to answer with the
    rule set's default answer instead of the model's (`RuleSet.apply` does
    both). `fired` names the rules and table rows that fired, in order
    (`urgent-cards`, `routing#3`). `errors` is empty unless a rule could not
    be evaluated (it then did not fire) or a table broke its hit policy at run
    time (the decision is then marked for review).
    """

    queue: str | None = None
    review: bool = False
    review_reason: str | None = None
    fallback: bool = False
    set: dict[str, Any] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)
    rules_version: str = ""
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, for traces and the prediction log."""
        return {
            "queue": self.queue,
            "review": self.review,
            "review_reason": self.review_reason,
            "fallback": self.fallback,
            "set": dict(self.set),
            "fired": list(self.fired),
            "rules_version": self.rules_version,
            "errors": list(self.errors),
        }
