"""Shadow rules against the live rules, over the logged traffic (docs/rules.md#shadow-against-live).

While rules run in shadow (or canary) mode beside the live rules, every prediction logs the
decision returned (`decision`) and the one not returned (`shadow`). Pairing them needs no
replay: the comparison reads what the service decided. In a canary the candidate's requests
return its decision and log the live one as the shadow, told apart by the version each
decision carries. The shapes are the model comparison's (store/version_comparison.py): a
`Disagreement` per pair of queues with example requests, and an agreement share; and, as
feedback comes back, both versions' scores (rules/scores.py), as the backtest gives them.

It reads every record of the window: keep windows to what the shadow run covers. The CLI
(`shipway rules compare`), the dashboard and the report all read this one computation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from shipway.rules.scores import DecisionScore, queue_totals
from shipway.store.feedback import recorded_outcomes
from shipway.store.outcomes import OutputReader
from shipway.store.version_comparison import Disagreement, cut_document

if TYPE_CHECKING:
    from shipway.store import PredictionRecord, Store

__all__ = ["RulesComparison", "compare_records", "compare_rules"]

_EXAMPLE_CHARS = 300
_NONE = "(none)"


@dataclass
class RulesComparison:
    """The shadow (candidate) rules against the live rules over `[since, until)` of one service."""

    service: str
    since: float
    until: float
    live_version: str | None = None
    shadow_version: str | None = None
    compared: int = 0  # predictions with both decisions, answered in service mode on
    agreed: int = 0  # ... whose queue, review, fallback and `set` were all the same
    canary: int = 0  # ... that the candidate decided (a canary), the live decision logged as the shadow
    review: Counter[str] = field(default_factory=Counter)  # shadow against live: "added", "removed"
    fallback: Counter[str] = field(default_factory=Counter)
    overrides: int = 0  # decisions whose `set` differs
    queues: Counter[tuple[str, str]] = field(default_factory=Counter)  # (live queue, shadow queue)
    disagreements: list[Disagreement] = field(default_factory=list)  # most frequent first
    without_shadow: int = 0  # predictions of the window no shadow rules decided
    other_pairs: dict[str, int] = field(default_factory=dict)  # "live -> shadow" versions not compared
    live_score: DecisionScore = field(default_factory=DecisionScore)
    shadow_score: DecisionScore = field(default_factory=DecisionScore)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "since": self.since,
            "until": self.until,
            "live_version": self.live_version,
            "shadow_version": self.shadow_version,
            "compared": self.compared,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "canary": self.canary,
            "queue_totals": {"live": queue_totals(self.queues, 0), "shadow": queue_totals(self.queues, 1)},
            "review": dict(self.review),
            "fallback": dict(self.fallback),
            "overrides_changed": self.overrides,
            "disagreements": [d.to_dict() for d in self.disagreements],
            "without_shadow": self.without_shadow,
            "other_pairs": self.other_pairs,
            "outcomes": {"live": self.live_score.to_dict(), "shadow": self.shadow_score.to_dict()},
        }


def compare_rules(
    store: Store,
    service: str,
    *,
    since: float,
    until: float,
    records: Iterable[PredictionRecord] | None = None,
    shadow: str | None = None,
    reader: OutputReader | None = None,
    examples: int = 3,
) -> RulesComparison:
    """Compare the shadow rules with the live ones over the window's logged predictions
    (`records`, default the store's; pass the log's Parquet export and the store's rows where
    the export holds them). `shadow` picks the shadow version when the window saw several;
    by default the one that decided the most predictions. Scores use the feedback of the window."""
    if records is None:
        records = store.iter_predictions(service=service, since=since, until=until)
    outcomes = recorded_outcomes(store, service, since, until)
    return compare_records(records, service, since, until, outcomes, shadow=shadow, reader=reader, examples=examples)


def compare_records(
    records: Iterable[PredictionRecord],
    service: str,
    since: float,
    until: float,
    outcomes: Mapping[str, Mapping[str, Any]],
    *,
    shadow: str | None = None,
    reader: OutputReader | None = None,
    examples: int = 3,
) -> RulesComparison:
    """`compare_rules` over records already read, with the outcomes by request id."""
    reader = reader or OutputReader()
    by_pair: dict[tuple[str | None, str | None], RulesComparison] = {}
    found: dict[tuple[str | None, str | None], dict[tuple[str, str], Disagreement]] = {}
    without = 0
    for record in records:
        if record.status >= 400 or record.mode not in (None, "on"):
            continue  # a failed request, or one answered with `default` (no live rules decided)
        if record.shadow is None:
            without += 1
            continue
        try:
            returned, other = _decision(record.decision), _decision(record.shadow)
            output = orjson.loads(record.outputs)
        except orjson.JSONDecodeError:
            continue
        if returned.get("answer") == "default":
            continue  # logged before the mode column, in service mode shadow or off
        live, candidate, swapped = returned, other, False
        live_version = record.rules_version or returned.get("rules_version")
        if returned and returned.get("rules_version") not in (None, live_version):
            live, candidate, swapped = other, returned, True  # a canary request: the candidate decided
        pair = (live_version or None, candidate.get("rules_version"))
        result = by_pair.get(pair)
        if result is None:
            result = by_pair[pair] = RulesComparison(service, since, until, pair[0], pair[1])
        _add(result, found.setdefault(pair, {}), record, live, candidate, swapped, examples)
        known = outcomes.get(record.request_id.removesuffix(":shadow"))
        if known:
            for score, d in ((result.live_score, live), (result.shadow_score, candidate)):
                score.add(
                    reader, output, d.get("queue"), bool(d.get("review")), bool(d.get("fallback")), d.get("set"), known
                )
    chosen = _chosen(by_pair, shadow)
    result = by_pair.get(chosen) if chosen is not None else None
    if result is None or chosen is None:
        result = RulesComparison(service, since, until, shadow_version=shadow)
    else:
        result.disagreements = sorted(found[chosen].values(), key=lambda d: (-d.count, d.live, d.candidate))
    result.without_shadow = without
    result.other_pairs = {
        f"{pair[0] or _NONE} -> {pair[1] or _NONE}": other.compared for pair, other in by_pair.items() if pair != chosen
    }
    return result


def _add(
    result: RulesComparison,
    found: dict[tuple[str, str], Disagreement],
    record: PredictionRecord,
    live: Mapping[str, Any],
    candidate: Mapping[str, Any],
    swapped: bool,
    examples: int,
) -> None:
    result.compared += 1
    result.canary += swapped
    queues = (str(live.get("queue") or _NONE), str(candidate.get("queue") or _NONE))
    result.queues[queues] += 1
    differs = queues[0] != queues[1]
    for key, counts in (("review", result.review), ("fallback", result.fallback)):
        if bool(live.get(key)) != bool(candidate.get(key)):
            counts["added" if candidate.get(key) else "removed"] += 1
            differs = True
    if (live.get("set") or {}) != (candidate.get("set") or {}):
        result.overrides += 1
        differs = True
    if not differs:
        result.agreed += 1
        return
    disagreement = found.setdefault(queues, Disagreement(*queues))
    disagreement.count += 1
    if len(disagreement.examples) < examples:
        disagreement.examples.append(
            {
                "request_id": record.request_id,
                "ts": record.ts,
                "inputs": cut_document(record.inputs, _EXAMPLE_CHARS),
                "live_fired": list(live.get("fired") or []),
                "shadow_fired": list(candidate.get("fired") or []),
            }
        )


def _chosen(
    by_pair: Mapping[tuple[str | None, str | None], RulesComparison], shadow: str | None
) -> tuple[str | None, str | None] | None:
    """The pair of versions to report: the one whose shadow is `shadow`, else the most compared."""
    pairs = [pair for pair in by_pair if shadow is None or pair[1] == shadow]
    if not pairs:
        return None
    return max(pairs, key=lambda pair: (by_pair[pair].compared, str(pair)))


def _decision(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    found = orjson.loads(raw) if isinstance(raw, bytes | str) else raw
    return found if isinstance(found, dict) else {}
