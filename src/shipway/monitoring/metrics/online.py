"""Online metrics of a live service, over a time window, per model or rules version.

Everything here reads the store's rollups and joined feedback (store.series),
so a window over millions of predictions reads thousands of rows. Latency
quantiles come from log-spaced histograms: within 5% (relative) of a latency
that was observed (store.rollups).
"""

from __future__ import annotations

import heapq
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from shipway.errors import ConfigError
from shipway.monitoring.metrics.outcome_metrics import binary_metrics, is_binary, ranking_metrics, regression_metrics
from shipway.store import Store
from shipway.store import series as sql
from shipway.store.columnar import logged_records
from shipway.store.feedback import Describe
from shipway.store.outcome_rollups import joined_output, rank_rows, rank_rows_per, score_rows, score_rows_per
from shipway.store.outcomes import OutputReader
from shipway.store.rollups import quantile

__all__ = ["OnlineMetrics", "online_metrics", "recent_predictions"]

TOP_K = (1, 3, 5)


@dataclass
class _Tally:
    """Sums for one time bucket (or the whole window) of one group."""

    requests: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    histogram: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    decisions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    labelled: int = 0
    ranked: int = 0
    hits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(TOP_K, 0))
    outcomes: dict[str, list[float]] = field(default_factory=dict)  # name: [count, number sum, number count]

    def add_feedback(self, name: str, n: int, top: tuple[int, int, int], ranked: int, total: float, count: int) -> None:
        if name == "label":
            self.labelled += n
            self.ranked += ranked
            for k, hits in zip(TOP_K, top, strict=True):
                self.hits[k] += hits
        else:
            sums = self.outcomes.setdefault(name, [0, 0.0, 0])
            sums[0] += n
            sums[1] += total
            sums[2] += count

    def to_dict(self) -> dict[str, Any]:
        served = self.requests - self.errors
        histogram = list(self.histogram.items())
        routed = _routing(self.decisions)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": _ratio(self.errors, self.requests),
            "latency_ms": {
                "mean": _ratio(self.latency_sum, self.requests),
                "p50": quantile(histogram, 0.5),
                "p90": quantile(histogram, 0.9),
                "p99": quantile(histogram, 0.99),
            },
            "routing": routed["queues"],
            "review_rate": routed["review"],
            "rules_fired": routed["fired"],
            "labelled": self.labelled,
            "coverage": _ratio(self.labelled, served),
            "accuracy": _ratio(self.hits[1], self.ranked),
            "top_k": {str(k): _ratio(self.hits[k], self.ranked) for k in TOP_K},
            "outcomes": {
                name: {"count": int(c), "mean": _ratio(total, int(nc))}
                for name, (c, total, nc) in self.outcomes.items()
            },
        }


@dataclass
class OnlineMetrics:
    service: str
    since: float
    until: float
    step_s: int
    by: str | None
    totals: dict[str, Any]
    series: list[dict[str, Any]]
    # The output kind's metrics per bucket (the whole service: the outcome rollups keep no versions).
    kind_series: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "since": self.since,
            "until": self.until,
            "step_s": self.step_s,
            "by": self.by,
            "totals": self.totals,
            "series": self.series,
            "kind_series": self.kind_series,
        }


def online_metrics(
    store: Store,
    service: str,
    *,
    since: float,
    until: float | None = None,
    step_s: int = 3600,
    by: str | None = None,
    describe: Describe | None = None,
) -> OnlineMetrics:
    """The service's metrics over [since, until), totals and per `step_s` bucket and group.

    With `describe`, feedback whose prediction has been logged since it arrived is
    joined first, so late predictions count.
    """
    until = time.time() if until is None else until
    if until <= since:
        raise ConfigError(f"the window is empty: since {since} is not before until {until}")
    if describe is not None:
        store.resolve_feedback(describe)
    total = _Tally()
    buckets: dict[tuple[str, int], _Tally] = defaultdict(_Tally)
    for t, group, status, decision, n, latency in sql.prediction_series(store, service, since, until, step_s, by):
        for tally in (total, buckets[(group, int(t))]):
            tally.requests += int(n)
            tally.latency_sum += float(latency)
            if int(status) >= 400:
                tally.errors += int(n)
            elif decision:
                tally.decisions[decision] += int(n)
    for t, group, bucket, n in sql.latency_series(store, service, since, until, step_s, by):
        for tally in (total, buckets[(group, int(t))]):
            tally.histogram[int(bucket)] += int(n)
    for row in sql.feedback_series(store, service, since, until, step_s, by):
        t, group, name, n, top1, top3, top5, ranked, number_sum, number_count = row
        top = (int(top1 or 0), int(top3 or 0), int(top5 or 0))
        for tally in (total, buckets[(group or "", int(t))]):
            tally.add_feedback(name, int(n), top, int(ranked), float(number_sum or 0), int(number_count))
    totals = total.to_dict()
    totals["log_dropped"] = sql.dropped_count(store, service, since, until)
    breakdown = sql.label_breakdown(store, service, since, until)
    totals["per_class"] = _per_class(breakdown)
    totals["calibration"] = _calibration(breakdown)
    totals.update(kind_metrics(store, service, since, until, describe, total.outcomes))
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    undefined: dict[str, Any] = {"accuracy": None, "top_k": {}} if totals["kind"] == "regression" else {}
    for (group, t), tally in sorted(buckets.items()):
        groups[group].append({"t": t, **tally.to_dict(), **undefined})
    series = [{"group": {by: group} if by else {}, "points": points} for group, points in sorted(groups.items())]
    kinds = kind_series(store, service, since, until, step_s, totals["kind"], describe)
    return OnlineMetrics(service, since, until, step_s, by, totals, series, kinds)


# What each bucket of `kind_series` carries of the kind's metrics (the totals carry them all).
_HEADLINE = {
    "binary": ("roc_auc", "auc_bound", "pr_auc", "brier", "log_loss", "accuracy", "precision", "recall"),
    "regression": ("mae", "rmse", "bias", "mean_actual"),
}


def kind_series(
    store: Store,
    service: str,
    since: float,
    until: float,
    step_s: int,
    kind: str | None,
    describe: Describe | None,
) -> list[dict[str, Any]]:
    """The metrics of the output's kind per `step_s` bucket that has outcomes, oldest first:
    `{"t", "count", ...}` with ROC AUC, PR AUC, Brier score, log loss, accuracy, precision and
    recall for a binary score; MAE, RMSE and bias for a regression; MRR, hit rate and NDCG at
    k for a ranking. A binary score's buckets bin the scores 1/100 wide (store.outcome_rollups.
    SERIES_BINS): ROC AUC and PR AUC are those of the scores rounded down to 1/100, ROC AUC
    within `auc_bound` of the exact one; the rest is exact (accuracy, precision and recall when
    the threshold is a multiple of 1/100). Buckets of whole days read the daily rollups (one query for all of them)
    and the joined feedback at the window's edges; shorter buckets read the window's joined
    feedback rows."""
    if kind not in ("binary", "regression", "ranking"):
        return []
    threshold = describe.threshold if isinstance(describe, OutputReader) else OutputReader().threshold
    if kind == "ranking":
        return [
            {"t": t, **ranking_metrics(r)}
            for t, r in sorted(rank_rows_per(store, service, since, until, step_s).items())
        ]
    out = []
    for t, rows in sorted(score_rows_per(store, service, since, until, step_s).items()):
        if kind == "binary":
            rows = [r for r in rows if int(r[1]) >= 0]
        if not rows:
            continue
        found = binary_metrics(rows, threshold) if kind == "binary" else regression_metrics(rows)
        out.append({"t": t, "count": found["count"], **{key: found[key] for key in _HEADLINE[kind]}})
    return out


def kind_metrics(
    store: Store, service: str, since: float, until: float, describe: Describe | None, outcomes: Iterable[str]
) -> dict[str, Any]:
    """The output's kind and the metrics it needs: for a binary score, its accuracy, per-class
    figures and calibration replace the label ones (its outputs name no label)."""
    reader = describe if isinstance(describe, OutputReader) else OutputReader()
    kind = reader.kind_of(joined_output(store, service, since, until) or b"null")
    out: dict[str, Any] = {"kind": kind, "binary": None, "regression": None, "ranking": None}
    if kind in ("score", "binary", "regression"):
        rows = score_rows(store, service, since, until)
        if kind == "binary" or (kind == "score" and is_binary(rows)):
            binary = binary_metrics([r for r in rows if int(r[1]) >= 0], reader.threshold)
            c = binary["confusion"]
            # The classes by the names the feedback gives them (monitoring.positive_label), else 1 and 0.
            binary["positive_label"], binary["negative_label"] = reader.verdict(True), reader.verdict(False)
            out.update(
                kind="binary",
                binary=binary,
                accuracy=binary["accuracy"],
                calibration=binary["calibration"],
                per_class={
                    reader.verdict(True): {
                        "precision": binary["precision"],
                        "recall": binary["recall"],
                        "support": c["tp"] + c["fn"],
                    },
                    reader.verdict(False): {
                        "precision": _ratio(c["tn"], c["tn"] + c["fn"]),
                        "recall": _ratio(c["tn"], c["tn"] + c["fp"]),
                        "support": c["tn"] + c["fp"],
                    },
                },
            )
        else:
            # No class to be right about: accuracy and top-k of a score are not defined.
            none: dict[str, Any] = {"accuracy": None, "top_k": {}, "calibration": {}}
            out.update(kind="regression", regression=regression_metrics(rows), per_class={}, **none)
    elif kind == "ranking":
        out["ranking"] = ranking_metrics(rank_rows(store, service, since, until))
        clicks = {name: ranking_metrics(rank_rows(store, service, since, until, name)) for name in outcomes}
        out["ranking"]["outcomes"] = {name: m for name, m in clicks.items() if m["count"]}
    return out


def recent_predictions(
    store: Store,
    service: str,
    *,
    since: float,
    limit: int = 20,
    order: str = "slowest",
    describe: Describe,
    export: Path | None = None,
) -> list[dict[str, Any]]:
    """The slowest (or least confident) predictions logged since `since`, with their documents decoded;
    read from the log's Parquet export in `export` where it covers the window."""
    if order not in ("slowest", "uncertain"):
        raise ConfigError(f"order must be 'slowest' or 'uncertain', got {order!r}")
    if order == "slowest" and export is not None:
        from shipway.store.columnar import read_log, records_of_table

        table = read_log(store, export, service=service, since=since, slowest=limit)
        if table is not None:
            return _described((r, describe(r.outputs, "label", None)[1]) for r in records_of_table(table))
    records: Iterable[Any] = logged_records(store, export, service=service, since=since)
    if order == "slowest":
        chosen = [(r, describe(r.outputs, "label", None)[1]) for r in heapq.nlargest(limit, records, key=_latency)]
    else:
        scored = ((r, describe(r.outputs, "label", None)[1]) for r in records)
        chosen = heapq.nsmallest(limit, (s for s in scored if s[1] is not None), key=lambda s: s[1] or 0.0)
    return _described(chosen)


def _described(chosen: Iterable[tuple[Any, float | None]]) -> list[dict[str, Any]]:
    return [
        {
            "request_id": r.request_id,
            "ts": r.ts,
            "latency_ms": r.latency_ms,
            "model_version": r.model_version,
            "rules_version": r.rules_version,
            "inputs": orjson.loads(r.inputs),
            "outputs": orjson.loads(r.outputs),
            "decision": None if r.decision is None else orjson.loads(r.decision),
            "confidence": confidence,
        }
        for r, confidence in chosen
    ]


def _latency(r: Any) -> float:
    return float(r.latency_ms)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _routing(decisions: dict[str, int]) -> dict[str, Any]:
    """Shares of decided predictions per queue, review rate, and how often each rule fired."""
    queues: dict[str, int] = defaultdict(int)
    fired: dict[str, int] = defaultdict(int)
    review = 0
    total = sum(decisions.values())
    for text, n in decisions.items():
        try:
            decision = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(decision, dict):
            continue
        queues[str(decision.get("queue") or "none")] += n
        review += n if decision.get("review") else 0
        for name in decision.get("fired") or ():
            fired[str(name)] += n
    return {
        "queues": {q: n / total for q, n in sorted(queues.items())},
        "review": _ratio(review, total),
        "fired": {name: n / total for name, n in sorted(fired.items())},
    }


def _per_class(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, float | int | None]]:
    predicted: dict[str, int] = defaultdict(int)
    actual: dict[str, int] = defaultdict(int)
    correct: dict[str, int] = defaultdict(int)
    for p, a, _, n, _ in rows:
        n = int(n)
        if p is not None:
            predicted[p] += n
        if a is not None:
            actual[a] += n
        if p is not None and p == a:
            correct[p] += n
    return {
        label: {
            "precision": _ratio(correct[label], predicted[label]),
            "recall": _ratio(correct[label], actual[label]),
            "support": actual[label],
        }
        for label in sorted(set(predicted) | set(actual))
    }


def _calibration(rows: list[tuple[Any, ...]], bins: int = 10) -> dict[str, Any]:
    """Reliability bins and the expected calibration error (ECE) over them, for the labelled
    predictions that had a confidence and a predicted label."""
    sums: dict[int, list[float]] = {}
    for p, a, b, n, confidence in rows:
        if b is None or p is None:
            continue
        found = sums.setdefault(int(b), [0, 0.0, 0])
        found[0] += int(n)
        found[1] += float(confidence)
        found[2] += int(n) if p == a else 0
    total = sum(v[0] for v in sums.values())
    out, ece = [], 0.0
    for b, (n, conf_sum, correct) in sorted(sums.items()):
        confidence, accuracy = conf_sum / n, correct / n
        ece += n / total * abs(accuracy - confidence)
        out.append(
            {"lo": b / bins, "hi": (b + 1) / bins, "count": int(n), "confidence": confidence, "accuracy": accuracy}
        )
    return {"ece": ece if total else None, "bins": out}
