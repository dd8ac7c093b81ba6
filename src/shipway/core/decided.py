"""Decided: an output together with the decision a rules stage took about it."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Decided"]


class _Decision(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Decided:
    """An output together with the decision a rules stage took about it.

    `output` is the answer (the model's output with the rules' overrides, or a
    fallback), `model_output` what the stages before the rules returned,
    `decision` the JSON-ready decision that is returned (None when only shadow
    rules ran), and `shadow` the one a
    shadow rule set took, logged and not returned. `rules_version` is the live rules'
    version when the decision was taken: the log records it, not the version live when
    the entry is written, which a switch in between changes.

    `decided` is the rules' own decision object, when a rules stage gives it: `decision`
    is then its `to_dict()`, made on first use, so that an offline replay comparing
    millions of decisions never builds their dicts.
    """

    __slots__ = (
        "_decision",
        "decided",
        "decision_json",
        "model_json",
        "model_output",
        "output",
        "rules_version",
        "shadow",
    )

    def __init__(
        self,
        output: Any,
        decision: dict[str, Any] | None,
        model_output: Any,
        shadow: dict[str, Any] | None = None,
        model_json: bytes | None = None,  # the model output's JSON, once rendered
        decision_json: bytes | None = None,  # the decision's JSON, once rendered
        rules_version: str | None = None,  # the live rules' version that decided
        *,
        decided: _Decision | None = None,
    ) -> None:
        self.output = output
        self._decision = decision
        self.model_output = model_output
        self.shadow = shadow
        self.model_json = model_json
        self.decision_json = decision_json
        self.rules_version = rules_version
        self.decided = decided

    @property
    def decision(self) -> dict[str, Any] | None:
        if self._decision is None and self.decided is not None:
            self._decision = self.decided.to_dict()
        return self._decision

    @decision.setter
    def decision(self, value: dict[str, Any] | None) -> None:
        self._decision, self.decided = value, None

    def to_dict(self) -> dict[str, Any]:
        """The trace's view: the answer, the decision, and the model's output before the rules."""
        return {
            "output": self.output,
            "decision": self.decision,
            "model_output": self.model_output,
            "shadow": self.shadow,
        }

    def __repr__(self) -> str:
        return f"Decided(output={self.output!r}, decision={self.decision!r}, shadow={self.shadow!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decided):
            return NotImplemented
        return (self.output, self.decision, self.model_output, self.shadow, self.rules_version) == (
            other.output,
            other.decision,
            other.model_output,
            other.shadow,
            other.rules_version,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaces
