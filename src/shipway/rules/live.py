"""The rules a running service applies, and the pipeline stage that applies them.

A worker holds one `LiveRules`; applying, rolling back or reloading rules
builds a new `Active` and swaps it in with one assignment, so a batch sees
either the old rules or the new ones, never a mix.

A canary's share of requests is chosen by `canary_bucket`: a stable number in [0, 1) per
request, from its `canary_key` (or the whole request), below `Active.canary` for the canary.
Offline replays (experiments/backtest_columns.py) bucket logged rows with it, as serving does.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any

from shipway.core.answer_columns import AnswerColumns
from shipway.core.pipeline import Decided, Pipeline
from shipway.core.stage import Stage
from shipway.rules.columns import ColumnDecisions, ColumnRules, NotColumnar
from shipway.rules.decision import Decision
from shipway.rules.ruleset import RuleSet
from shipway.rules.runtime import mapping, walk

__all__ = ["META_SCHEMA", "Active", "DecidedColumns", "LiveRules", "canary_bucket", "rules_stage", "with_rules"]

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

    @classmethod
    def of(cls, rules: RuleSet | Active | None) -> Active:
        """`rules` as an Active: an Active as it is, a rule set (or None: no rules) live alone."""
        return rules if isinstance(rules, Active) else cls(live=rules)

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
        # What rules read as meta.time: now, when serving; a replay gives each logged row's time.
        self.clock: Callable[[], float] = time.time

    def swap(self, active: Active) -> None:
        self.active = active

    def decide(self, value: Any, request: Any, active: Active | None = None) -> Any:
        """Apply the rules to one output: a `Decided`, or the output as it is without rules.
        `active` pins the rules (a batch passes the ones it read once, so it never sees a mix)."""
        active = active or self.active
        live, candidate = active.live, active.candidate
        if candidate is None:  # the usual case, served and replayed: the live rules alone
            if live is None:
                return value
            decision = live.decide(request, value, {"time": self.clock(), "canary": False})
            if self.on_decision is not None:
                self.on_decision(decision)
            answer = live.apply(mapping(value), decision) if decision.fallback or decision.set else value
            return Decided(answer, None, value, None, rules_version=live.version, decided=decision)
        # The compiled rules read only the fields they use: pass the objects as they are.
        use_candidate = _canary(active, request, value)
        chosen, other = (candidate, live) if use_candidate else (live, candidate)
        meta = {"time": self.clock(), "canary": use_candidate}
        shadow = other.decide(request, value, meta).to_dict() if other is not None else None
        version = live.version if live is not None else None  # what the log records
        if chosen is None:
            return Decided(value, None, value, shadow, rules_version=version)
        decision = chosen.decide(request, value, meta)
        if self.on_decision is not None:
            self.on_decision(decision)
        answer = chosen.apply(mapping(value), decision) if decision.fallback or decision.set else value
        return Decided(answer, None, value, shadow, rules_version=version, decided=decision)

    # -- the batch form ----------------------------------------------------------------------

    def decide_many(self, values: list[Any], requests: list[Any]) -> list[Any]:
        """The rules stage's batch form: `decide` over a batch, the rules read once for all of it.
        With the live rules alone (the usual case) the batch is decided in one pass (`decisions`)."""
        active = self.active
        live = active.live
        if active.candidate is not None:  # canary and shadow: each item its own choice and shadow
            decide = self.decide
            return [decide(v, r, active) for v, r in zip(values, requests, strict=True)]
        if live is None:
            return values
        clock = self.clock
        decisions = _batch(live, values, requests, [clock() for _ in values])
        on_decision, apply, version = self.on_decision, live.apply, live.version
        out = []
        for value, decision in zip(values, decisions, strict=True):
            if on_decision is not None:
                on_decision(decision)
            answer = apply(mapping(value), decision) if decision.fallback or decision.set else value
            out.append(Decided(answer, None, value, None, rules_version=version, decided=decision))
        return out

    def decide_columns(self, values: list[Any] | AnswerColumns, requests: list[Any]) -> DecidedColumns | None:
        """`decide_many` over columns, for batch scoring: the live rules' column form
        (rules/columns.py) decides the batch, and `decide_many` the rows it is not sure of and
        those whose answer the rules change (`set`, `fallback`). None where the rules have no
        column form (or a candidate runs beside them): the caller runs `decide_many`. `values`
        are the outputs, or the service's column answers (`predict_columns`); for those,
        `answers` is the AnswerColumns itself and the row path's rows get their answers made."""
        import numpy as np

        active = self.active
        live = active.live
        if live is None and active.candidate is None:  # no rules: the answers as they are, no decisions
            return DecidedColumns(values if isinstance(values, AnswerColumns) else list(values), None, [], {}, None)
        columnar = ColumnRules.of(live)
        if live is None or active.candidate is not None or columnar is None or self.on_decision is not None:
            return None
        queues: list[Any] = []
        constants: list[Any] = []
        try:
            columns = _rule_columns(columnar.columns, values, requests, self.clock())
            decisions = columnar.decide(columns, len(values), queues, constants)
        except NotColumnar:
            return None
        by_row = ~decisions.sure | decisions.fallback
        for codes in decisions.set.values():
            by_row |= codes >= 0
        columnar_answers = isinstance(values, AnswerColumns)
        answers: Any = values if isinstance(values, AnswerColumns) else list(values)
        rows: dict[int, Decided] = {}
        places = np.flatnonzero(by_row).tolist()
        if places:
            own = values.rows(places) if isinstance(values, AnswerColumns) else [values[i] for i in places]
            decided = self.decide_many(own, [requests[i] for i in places])
            for i, one in zip(places, decided, strict=True):
                rows[i] = one
                if not columnar_answers:
                    answers[i] = one.output
        return DecidedColumns(answers, decisions, queues, rows, live.version)

    def decisions(
        self,
        values: list[Any],
        requests: list[Any],
        times: list[float],
        active: Active | None = None,
        empty: Decision | None = None,
    ) -> list[Decision | None]:
        """What the rules decide for each output of a batch, as `decide` decides it (the canary's
        share takes the candidate's decision, shadow rules answer nobody), `times` its meta.time;
        `empty` where no rules decide. An offline replay compares these without building answers."""
        active = active or self.active
        live, candidate = active.live, active.candidate
        if candidate is None:
            if live is None:
                return [empty] * len(values)
            return _batch(live, values, requests, times)  # type: ignore[return-value]
        out: list[Decision | None] = []
        for value, request, ts in zip(values, requests, times, strict=True):
            use_candidate = _canary(active, request, value)
            chosen = candidate if use_candidate else live
            out.append(chosen.decide(request, value, {"time": ts, "canary": use_candidate}) if chosen else empty)
        return out


def rules_stage(live: LiveRules) -> Stage:
    """The pipeline's `rules` stage: after predict and the after-stages, before the output schema.
    Its batch form is `LiveRules.decide_many`: serving's batches and offline replays run it; its
    column form `LiveRules.decide_columns`, batch scoring."""
    return Stage("rules", "rules", one=live.decide, many=live.decide_many, columns=live.decide_columns)


def with_rules(pipeline: Pipeline, ruleset: RuleSet) -> Pipeline:
    """A copy of `pipeline` whose rules stage runs `ruleset` (a candidate, for gates and tests)."""
    live = LiveRules()
    live.swap(Active(live=ruleset))
    stage = rules_stage(live)
    stages = [stage if s.name == "rules" else s for s in pipeline.stages]  # in its place: stages after it stay after
    if stage not in stages:
        stages.append(stage)
    return Pipeline(
        stages, pipeline.input_schema, pipeline.output_schema, {**pipeline.ids, "rules_version": ruleset.version}
    )


@dataclass(slots=True)
class DecidedColumns:
    """A batch decided over columns (`LiveRules.decide_columns`): `answers` holds each row's
    answer (the AnswerColumns it decided, whose rows in `rows` have the answer there); `decisions`
    the live rules' decisions as columns, except for the rows in `rows`, which the row path decided
    (their `Decided`, whose answer is in `answers` too); None where no rules are live."""

    answers: list[Any] | AnswerColumns
    decisions: ColumnDecisions | None
    queues: list[Any]
    rows: dict[int, Decided]
    version: str | None


def _rule_columns(
    names: set[str], values: list[Any] | AnswerColumns, requests: list[Any], now: float
) -> dict[str, Any]:
    """The columns the rules read, from a batch's outputs and requests: `output.f` from the outputs'
    fields (pydantic models are read through `mapping`, as `decide` reads them), or from the
    column answers' own column of a field of one value per row."""
    import numpy as np
    import pyarrow as pa

    n = len(values)
    columns: dict[str, Any] = {"ts": np.full(n, now), "meta.canary": np.zeros(n, dtype=bool)}
    for name in names - set(columns):
        root, _, field = name.partition(".")
        if root == "output" and isinstance(values, AnswerColumns):
            column = values.column(field)
            if column is None or column.type not in (pa.string(), pa.int64(), pa.float64(), pa.bool_()):
                raise NotColumnar(f"field {name}")
            columns[name] = column if column.null_count < len(column) else pa.nulls(len(column))
            continue
        items: Any = values if root == "output" else requests if root == "input" else None
        if items is None:
            raise NotColumnar(f"field {name}")
        got = _field(items, field)
        kinds = {type(v) for v in got} - {type(None)}
        # Exact types only: a subclass (an enum, a bool among numbers) reads differently in decide.
        if len(kinds) > 1 or not kinds <= {str, int, float, bool}:
            raise NotColumnar(f"field {name} holds {', '.join(sorted(k.__name__ for k in kinds))}")
        try:
            columns[name] = pa.array(
                got,
                {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}[kinds.pop()]
                if kinds
                else pa.null(),
            )
        except (OverflowError, pa.ArrowException) as err:  # an integer beyond int64
            raise NotColumnar(f"field {name}: {err}") from None
    return columns


def _field(items: list[Any], name: str) -> list[Any]:
    """`mapping(item).get(name)` of every item: by attribute where the items are pydantic models
    of one type that declares the field and keeps no extra fields (what `mapping` reads then)."""
    kinds = set(map(type, items))
    if len(kinds) == 1:
        kind = kinds.pop()
        fields = getattr(kind, "__pydantic_fields__", None) or ()
        if name in fields and (getattr(kind, "model_config", None) or {}).get("extra") != "allow":
            return list(map(attrgetter(name), items))
        if kind is dict:
            return [item.get(name) for item in items]
    return [mapping(item).get(name) for item in items]


def _batch(rules: RuleSet, values: list[Any], requests: list[Any], times: list[float]) -> list[Decision]:
    """The rules' compiled batch form over a batch; each row's meta made only when the rules read it."""
    metas = [{"time": t, "canary": False} for t in times] if rules.reads_meta else repeat(None, len(times))
    return rules.decide_batch(requests, values, metas)


def _canary(active: Active, request: Any, value: Any) -> bool:
    """Whether this request falls in the canary's share (always False for shadow rules)."""
    return (
        active.candidate_mode == "canary"
        and canary_bucket(active.canary_key, mapping(request), mapping(value)) < active.canary
    )


def canary_bucket(key: str | None, request: Mapping[str, Any], output: Mapping[str, Any]) -> float:
    """A stable number in [0, 1) for a request: the same key always lands in the same bucket.

    `key` is a path such as `input.customer_id` or `output.label` into the request or the
    model's output (both mappings); None, or a path with no value, buckets the whole request.
    A request is in the canary when its bucket is below `Active.canary`."""
    if key:
        root, _, rest = key.partition(".")
        base = request if root == "input" else output if root == "output" else None
        value = walk(base, tuple(rest.split("."))) if base is not None and rest else None
        text = repr(value) if value is not None else repr(sorted(request.items()))
    else:
        text = repr(sorted(request.items()))
    return zlib.crc32(text.encode()) / 2**32
