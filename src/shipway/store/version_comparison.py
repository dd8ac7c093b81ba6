"""A candidate model version against the live one, from the prediction log (docs/deploy.md#rollouts).

While a candidate shadows, every request is logged twice under one request id: the live
answer and the candidate's, under their own model versions. Pairing them gives the
agreement and the per-class disagreements (with example requests); each version's own
records give its latency, error rate and, as labels arrive through feedback, its online
accuracy. In canary the candidate answers a share of requests alone: those count for its
latency, errors and accuracy, not for agreement.

Below the capabilities so the CLI, the report, the dashboard and the rollout guards all
read one computation. It reads every record of the window, as drift does: keep windows to
what a rollout step covers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from shipway.store.outcomes import OutputReader

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = ["Comparison", "Disagreement", "VersionFigures", "compare_versions", "versions_in_window"]

_EXAMPLE_CHARS = 500


@dataclass(slots=True)
class VersionFigures:
    """One version's figures over the window: what it answered, how fast, how often it failed,
    and how often it was right on the requests whose label came back."""

    version: str
    requests: int = 0
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    labelled: int = 0
    correct: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "labelled": self.labelled,
            "correct": self.correct,
            "accuracy": self.accuracy,
        }


@dataclass(slots=True)
class Disagreement:
    """Requests where the live version said `live` and the candidate `candidate`."""

    live: str
    candidate: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"live": self.live, "candidate": self.candidate, "count": self.count, "examples": self.examples}


@dataclass(slots=True)
class Comparison:
    """The candidate against the live version over `[since, until)` of one service."""

    service: str
    live: VersionFigures
    candidate: VersionFigures
    since: float
    until: float
    paired: int = 0  # requests both versions answered without error
    agreed: int = 0
    per_class: dict[str, list[int]] = field(default_factory=dict)  # live label -> [paired, agreed]
    disagreements: list[Disagreement] = field(default_factory=list)  # most frequent first

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.paired if self.paired else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "since": self.since,
            "until": self.until,
            "live": self.live.to_dict(),
            "candidate": self.candidate.to_dict(),
            "paired": self.paired,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "per_class": {
                label: {"paired": n, "agreed": k, "agreement": k / n}
                for label, (n, k) in sorted(self.per_class.items(), key=lambda item: (-item[1][0], item[0]))
            },
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


def versions_in_window(store: Store, service: str, since: float, until: float) -> dict[str, int]:
    """Requests logged per model version over the window (whole minutes, from the rollups), most first."""
    ph = store.placeholder
    rows = store._query(
        f"SELECT model_version, SUM(n) FROM prediction_counts WHERE service = {ph} AND minute >= {ph} "
        f"AND minute <= {ph} GROUP BY model_version",
        [service, int(since // 60), int(until // 60)],
    )
    return dict(sorted(((str(v), int(n)) for v, n in rows), key=lambda item: (-item[1], item[0])))


def compare_versions(
    store: Store,
    service: str,
    candidate: str,
    *,
    since: float,
    until: float,
    live: str | None = None,
    reader: OutputReader | None = None,
    examples: int = 3,
) -> Comparison:
    """Compare `candidate` with `live` (default: the other version that logged most in the window).

    Labels are read from the outputs as the monitoring settings say (`reader`, the usual field
    names by default); an output without a label is compared whole.
    """
    reader = reader or OutputReader()
    if live is None:
        others = [v for v in versions_in_window(store, service, since, until) if v != candidate]
        live = others[0] if others else ""
    result = Comparison(service, VersionFigures(live), VersionFigures(candidate), since, until)
    truth = _labels(store, service, since, until)
    latencies: dict[str, list[float]] = {live: [], candidate: []}
    waiting: dict[str, dict[str, str]] = {live: {}, candidate: {}}  # answered, not yet paired: id -> label
    disagreements: dict[tuple[str, str], Disagreement] = {}
    for record in store.iter_predictions(service=service, since=since, until=until):
        version = record.model_version
        if version not in waiting:
            continue
        figures = result.live if version == live else result.candidate
        figures.requests += 1
        latencies[version].append(record.latency_ms)
        if record.status >= 400:
            figures.errors += 1
            continue
        label = _label(reader, record.outputs)
        actual = truth.get(record.request_id)
        if actual is not None:
            figures.labelled += 1
            figures.correct += _rank(reader, record.outputs, actual) == 1
        other = candidate if version == live else live
        paired = waiting[other].pop(record.request_id, None)
        if paired is None:
            waiting[version][record.request_id] = label
            continue
        live_label, candidate_label = (label, paired) if version == live else (paired, label)
        counts = result.per_class.setdefault(live_label, [0, 0])
        counts[0] += 1
        result.paired += 1
        if live_label == candidate_label:
            counts[1] += 1
            result.agreed += 1
            continue
        found = disagreements.setdefault((live_label, candidate_label), Disagreement(live_label, candidate_label))
        found.count += 1
        if len(found.examples) < examples:
            found.examples.append({"request_id": record.request_id, "ts": record.ts, "inputs": _cut(record.inputs)})
    for figures in (result.live, result.candidate):
        figures.latency_p50_ms, figures.latency_p99_ms = _quantiles(latencies[figures.version], (0.5, 0.99))
    result.disagreements = sorted(disagreements.values(), key=lambda d: (-d.count, d.live, d.candidate))
    return result


def _labels(store: Store, service: str, since: float, until: float) -> dict[str, Any]:
    """The true labels that came back for predictions of the window, by request id."""
    ph = store.placeholder
    # pred_ts is the joined record's time, which a shadow record may set a little after the
    # live one: a minute's margin keeps requests at the window's end.
    rows = store._query(
        f"SELECT request_id, value FROM feedback WHERE service = {ph} AND name = 'label' "
        f"AND pred_ts >= {ph} AND pred_ts < {ph}",
        [service, since, until + 60],
    )
    return {str(request_id): orjson.loads(value) for request_id, value in rows}


def _label(reader: OutputReader, outputs: bytes) -> str:
    predicted = reader(outputs, "label", None)[0]
    if predicted is not None:
        return predicted
    try:
        return orjson.dumps(orjson.loads(outputs), option=orjson.OPT_SORT_KEYS).decode()[:_EXAMPLE_CHARS]
    except orjson.JSONDecodeError:
        return bytes(outputs).decode("utf-8", "replace")[:_EXAMPLE_CHARS]


def _rank(reader: OutputReader, outputs: bytes, actual: Any) -> int | None:
    return reader(outputs, "label", actual)[2]


def _cut(document: bytes) -> Any:
    text = bytes(document).decode("utf-8", "replace")
    if len(text) > _EXAMPLE_CHARS:
        return text[: _EXAMPLE_CHARS - 1] + "…"
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _quantiles(values: list[float], qs: Iterable[float]) -> tuple[float | None, ...]:
    """Nearest-rank quantiles (an observed value each), None for no values."""
    if not values:
        return tuple(None for _ in qs)
    values.sort()
    return tuple(values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))] for q in qs)
