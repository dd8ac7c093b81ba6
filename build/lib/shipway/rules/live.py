"""The rules a running service applies, and the pipeline stage that applies them.

A worker holds one `LiveRules`; applying, rolling back or reloading rules
builds a new `Active` and swaps it in with one assignment, so a batch sees
either the old rules or the new ones, never a mix.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipway.core.pipeline import Decided, Pipeline
from shipway.core.stage import Stage
from shipway.rules.decision import Decision
from shipway.rules.ruleset import RuleSet
from shipway.rules.runtime import mapping, walk

__all__ = ["META_SCHEMA", "Active", "LiveRules", "rules_stage", "with_rules"]

# What rules may read under `meta.`: checked at load like input and output fields.
META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "time": {"type": "number", "description": "unix seconds when the rules ran"},
        "canary": {"type": "boolean", "description": "true when this request was routed to the canary rules"},
    },
}


@dataclass(frozen=True, slots=True)
class Active:
    """The live rules and, optionally, a candidate running beside them.

    The candidate runs in `shadow` (decided and logged, never returned) or as a
    `canary`: a stable share of requests, keyed by `canary_key` (a path such as
    `input.customer_id`), gets its decision and the rest the live one; the
    decision not returned is logged as the shadow either way.
    """

    live: RuleSet | None = None
    candidate: RuleSet | None = None
    candidate_mode: str = "shadow"
    canary: float = 0.0
    canary_key: str | None = None

    @property
    def versions(self) -> tuple[str | None, str | None]:
        return (
            self.live.version if self.live else None,
            self.candidate.version if self.candidate else None,
        )


class LiveRules:
    """The rules one worker applies now. `swap()` replaces them atomically."""

    def __init__(self, on_decision: Callable[[Decision], None] | None = None) -> None:
        self.active = Active()
        self.on_decision = on_decision

    def swap(self, active: Active) -> None:
        self.active = active

    def decide(self, value: Any, request: Any, active: Active | None = None) -> Any:
        """Apply the rules to one output: a `Decided`, or the output as it is without rules.
        `active` pins the rules (a batch passes the ones it read once, so it never sees a mix)."""
        active = active or self.active
        live, candidate = active.live, active.candidate
        if live is None and candidate is None:
            return value
        # The compiled rules read only the fields they use: pass the objects as they are.
        use_candidate = (
            candidate is not None
            and active.candidate_mode == "canary"
            and _bucket(active.canary_key, mapping(request), mapping(value)) < active.canary
        )
        chosen, other = (candidate, live) if use_candidate else (live, candidate)
        meta = {"time": time.time(), "canary": use_candidate}
        shadow = other.decide(request, value, meta).to_dict() if other is not None else None
        version = live.version if live is not None else None  # what the log records
        if chosen is None:
            return Decided(value, None, value, shadow, rules_version=version)
        decision = chosen.decide(request, value, meta)
        if self.on_decision is not None:
            self.on_decision(decision)
        answer = chosen.apply(mapping(value), decision) if decision.fallback or decision.set else value
        return Decided(answer, decision.to_dict(), value, shadow, rules_version=version)


def rules_stage(live: LiveRules) -> Stage:
    """The pipeline's `rules` stage: after predict and the after-stages, before the output schema."""

    def many(values: list[Any], requests: list[Any]) -> list[Any]:
        active = live.active
        if active.live is None and active.candidate is None:
            return values
        decide = live.decide
        return [decide(v, r, active) for v, r in zip(values, requests, strict=True)]

    return Stage("rules", "rules", one=live.decide, many=many)


def with_rules(pipeline: Pipeline, ruleset: RuleSet) -> Pipeline:
    """A copy of `pipeline` whose rules stage runs `ruleset` (a candidate, for gates and tests)."""
    live = LiveRules()
    live.swap(Active(live=ruleset))
    candidate = pipeline.without("rules")
    candidate.stages.append(rules_stage(live))
    candidate.ids = {**pipeline.ids, "rules_version": ruleset.version}
    return candidate


def _bucket(key: str | None, request: Any, output: Any) -> float:
    """A stable number in [0, 1) for a request: the same key always lands in the same bucket."""
    if key:
        root, _, rest = key.partition(".")
        base = request if root == "input" else output if root == "output" else None
        value = walk(base, tuple(rest.split("."))) if base is not None and rest else None
        text = repr(value) if value is not None else repr(sorted(request.items()))
    else:
        text = repr(sorted(request.items()))
    return zlib.crc32(text.encode()) / 2**32
