"""Decided: an output together with the decision a rules stage took about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Decided"]


@dataclass(slots=True)
class Decided:
    """An output together with the decision a rules stage took about it.

    `output` is the answer (the model's output with the rules' overrides, or a
    fallback), `model_output` what the stages before the rules returned,
    `decision` the JSON-ready decision that is returned (None when only shadow
    rules ran), and `shadow` the one a
    shadow rule set took, logged and not returned. `rules_version` is the live rules'
    version when the decision was taken: the log records it, not the version live when
    the entry is written, which a switch in between changes.
    """

    output: Any
    decision: dict[str, Any] | None  # None: only shadow rules ran
    model_output: Any
    shadow: dict[str, Any] | None = None
    model_json: bytes | None = None  # the model output's JSON, once rendered
    decision_json: bytes | None = None  # the decision's JSON, once rendered
    rules_version: str | None = None  # the live rules' version that decided

    def to_dict(self) -> dict[str, Any]:
        """The trace's view: the answer, the decision, and the model's output before the rules."""
        return {
            "output": self.output,
            "decision": self.decision,
            "model_output": self.model_output,
            "shadow": self.shadow,
        }
