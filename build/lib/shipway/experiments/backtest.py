"""Rule backtests: replay logged predictions through the current and the proposed rules.

The model is not called: the prediction log keeps each request and the model's
output before any rules, so only the rules run, over millions of rows in
seconds. The report counts the decisions that change, from which queue to
which, and keeps a few examples of each change: the earliest ones, by time and
request id, so that reports of parts of the log merge into the report of the
whole (`BacktestReport.merge`) and a run split over worker processes or a Ray
cluster (`BacktestJob`) answers exactly as one pass does.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import orjson

from shipway.rules import Decision, RuleSet, load_rules
from shipway.rules.live import META_SCHEMA
from shipway.store import PredictionRecord

__all__ = ["BacktestJob", "BacktestReport", "backtest", "merged", "replay"]

NO_RULES = "(no rules)"


@dataclass
class BacktestReport:
    """What changes if `proposed` replaces `current` on the replayed traffic."""

    current_version: str
    proposed_version: str
    total: int = 0
    changed: int = 0
    skipped: int = 0  # rows logged in service mode off or shadow, or whose JSON could not be read
    queues: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    review: Counter[str] = field(default_factory=Counter)  # "added", "removed"
    fallback: Counter[str] = field(default_factory=Counter)
    overrides: int = 0  # decisions whose `set` changed
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None
    limit: int = 3  # examples kept per change

    def merge(self, other: BacktestReport) -> BacktestReport:
        """The report of both parts of the log, as one pass over all of it would give."""
        if (self.current_version, self.proposed_version) != (other.current_version, other.proposed_version):
            raise ValueError("only reports of the same two rule sets merge")
        examples = {
            key: sorted([*self.examples.get(key, []), *other.examples.get(key, [])], key=_when)[: self.limit]
            for key in {**self.examples, **other.examples}
        }
        return BacktestReport(
            self.current_version,
            self.proposed_version,
            total=self.total + other.total,
            changed=self.changed + other.changed,
            skipped=self.skipped + other.skipped,
            queues=self.queues + other.queues,
            review=self.review + other.review,
            fallback=self.fallback + other.fallback,
            overrides=self.overrides + other.overrides,
            examples={key: examples[key] for key in sorted(examples)},
            first_ts=_pick(min, self.first_ts, other.first_ts),
            last_ts=_pick(max, self.last_ts, other.last_ts),
            limit=self.limit,
        )

    @property
    def transitions(self) -> list[tuple[str | None, str | None, int]]:
        """Queue changes, most frequent first (unchanged queues left out)."""
        return [(a, b, n) for (a, b), n in self.queues.most_common() if a != b]

    def to_dict(self) -> dict[str, Any]:
        return {
            "current_version": self.current_version,
            "proposed_version": self.proposed_version,
            "total": self.total,
            "changed": self.changed,
            "skipped": self.skipped,
            "window": [self.first_ts, self.last_ts],
            "queue_changes": [{"from": a, "to": b, "count": n} for a, b, n in self.transitions],
            "queue_totals": {
                "current": _totals(self.queues, 0),
                "proposed": _totals(self.queues, 1),
            },
            "review": dict(self.review),
            "fallback": dict(self.fallback),
            "overrides_changed": self.overrides,
            "examples": self.examples,
        }


def backtest(
    records: Iterable[PredictionRecord],
    current: RuleSet | None,
    proposed: RuleSet,
    *,
    examples: int = 3,
) -> BacktestReport:
    """Decide every record with both rule sets and compare; `current` None means no rules today."""
    rows = ((r.request_id, r.ts, r.inputs, r.outputs, r.decision) for r in records)
    return replay(rows, current, proposed, examples=examples)


Row = tuple[str, float, Any, Any, Any]  # request_id, ts, inputs, outputs, decision: JSON text or parsed


def replay(rows: Iterable[Row], current: RuleSet | None, proposed: RuleSet, *, examples: int = 3) -> BacktestReport:
    """The backtest of logged rows whose JSON columns are text (the store) or already parsed (Parquet)."""
    report = BacktestReport(current.version if current else NO_RULES, proposed.version, limit=examples)
    loads = orjson.loads
    decide_new = proposed.decide
    decide_old = current.decide if current is not None else None
    empty = Decision()
    first: float | None = None
    last: float | None = None
    for request_id, ts, inputs, outputs, decision in rows:
        if decision is not None and _is_default(decision):
            report.skipped += 1  # logged in service mode off or shadow: not the answer the rules saw
            continue
        try:
            request = loads(inputs) if isinstance(inputs, (bytes, str)) else inputs
            output = loads(outputs) if isinstance(outputs, (bytes, str)) else outputs
        except orjson.JSONDecodeError:
            report.skipped += 1
            continue
        meta = {"time": ts, "canary": False}
        old = decide_old(request, output, meta) if decide_old is not None else empty
        new = decide_new(request, output, meta)
        report.total += 1
        report.queues[(old.queue, new.queue)] += 1
        differs = old.queue != new.queue
        if old.review != new.review:
            report.review["added" if new.review else "removed"] += 1
            differs = True
        if old.fallback != new.fallback:
            report.fallback["added" if new.fallback else "removed"] += 1
            differs = True
        if old.set != new.set:
            report.overrides += 1
            differs = True
        if differs:
            report.changed += 1
            key = f"{old.queue} -> {new.queue}" if old.queue != new.queue else "same queue, other change"
            kept = report.examples.setdefault(key, [])
            when = (ts, request_id)
            if len(kept) < examples or when < _when(kept[-1]):
                # The earliest examples by time, then request id: the same whichever part of the log ran.
                example = {
                    "request_id": request_id,
                    "ts": ts,
                    "input": request,
                    "output": output,
                    "current": _brief(old),
                    "proposed": _brief(new),
                }
                kept.insert(bisect.bisect(kept, when, key=_when), example)
                del kept[examples:]
        if first is None or ts < first:
            first = ts
        if last is None or ts > last:
            last = ts
    report.first_ts, report.last_ts = first, last
    report.examples = {key: report.examples[key] for key in sorted(report.examples)}
    return report


@dataclass
class BacktestJob:
    """A backtest for an offline engine (shipway.engine): each worker compiles both rule sets
    once, replays its batches of the log, and the partial reports merge (`merged`)."""

    COLUMNS = ("request_id", "ts", "service", "inputs", "outputs", "decision")  # what it reads of the log

    proposed: tuple[str, str]  # the rules' source and its file name
    current: tuple[str, str] | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    labels: list[str] | None = None
    examples: int = 3
    since: float | None = None  # rows logged before are left out
    until: float | None = None  # and rows logged at or after
    service: str | None = None  # rows of other services are left out

    def setup(self) -> None:
        def compile(source: tuple[str, str]) -> RuleSet:
            text, filename = source
            return load_rules(
                text,
                input_schema=self.input_schema,
                output_schema=self.output_schema,
                labels=self.labels,
                filename=filename,
                meta_schema=META_SCHEMA,
            )

        self._proposed = compile(self.proposed)
        self._current = compile(self.current) if self.current is not None else None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}  # workers compile their own

    def __call__(self, rows: list[dict[str, Any]]) -> BacktestReport:
        since, until, service = self.since, self.until, self.service
        logged = (
            (r["request_id"], r["ts"], r["inputs"], r["outputs"], r.get("decision"))
            for r in rows
            if (since is None or r["ts"] >= since)
            and (until is None or r["ts"] < until)
            and (service is None or r.get("service", service) == service)
        )
        return replay(logged, self._current, self._proposed, examples=self.examples)


def merged(parts: Iterator[BacktestReport] | Iterable[BacktestReport]) -> BacktestReport:
    """One report from the reports of the parts of a log."""
    return reduce(BacktestReport.merge, parts)


def _is_default(decision: Any) -> bool:
    if isinstance(decision, bytes):
        return b'"answer":"default"' in decision
    if isinstance(decision, str):
        return '"answer":"default"' in decision
    return isinstance(decision, dict) and decision.get("answer") == "default"


def _when(example: dict[str, Any]) -> tuple[float, str]:
    return (example["ts"], example["request_id"])


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else choose(a, b)


def _brief(decision: Decision) -> dict[str, Any]:
    return {
        "queue": decision.queue,
        "review": decision.review,
        "review_reason": decision.review_reason,
        "fallback": decision.fallback,
        "set": decision.set,
        "fired": decision.fired,
    }


def _totals(queues: Counter[tuple[str | None, str | None]], side: int) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for pair, n in queues.items():
        totals[str(pair[side])] += n
    return dict(totals.most_common())
