"""Rule backtests: replay logged predictions through the current and the proposed rules.

The model is not called: the prediction log keeps each request and the model's
output before any rules, so only the rules run, over millions of rows in
seconds. The report counts the decisions that change, from which queue to
which, and keeps a few examples of each change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from shipway.rules import Decision, RuleSet
from shipway.store import PredictionRecord

__all__ = ["BacktestReport", "backtest"]

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
    report = BacktestReport(current.version if current else NO_RULES, proposed.version)
    loads = orjson.loads
    decide_new = proposed.decide
    decide_old = current.decide if current is not None else None
    empty = Decision()
    for record in records:
        if record.decision is not None and b'"answer":"default"' in record.decision:
            report.skipped += 1  # logged in service mode off or shadow: not the answer the rules saw
            continue
        try:
            request, output = loads(record.inputs), loads(record.outputs)
        except orjson.JSONDecodeError:
            report.skipped += 1
            continue
        meta = {"time": record.ts, "canary": False}
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
            if len(kept) < examples:
                kept.append(
                    {
                        "request_id": record.request_id,
                        "input": request,
                        "output": output,
                        "current": _brief(old),
                        "proposed": _brief(new),
                    }
                )
        if report.first_ts is None:
            report.first_ts = record.ts
        report.last_ts = record.ts
    return report


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
