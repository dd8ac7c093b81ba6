"""A candidate model version against the live one, from the prediction log (docs/deploy.md#rollouts).

While a candidate shadows, a request is logged twice: the live answer under its request id,
and the candidate's under the same id with SHADOW_SUFFIX, each under its model version.
Pairing them gives the agreement and the per-class disagreements (with example requests);
each version's own rollups give its requests, error rate and latency, and its records, as
labels arrive through feedback, its online accuracy. In canary the candidate answers a share
of requests alone: those count for its figures, not for agreement.

Below the capabilities so the CLI, the report, the dashboard and the rollout guards all
read one computation. It reads every record of the window, as drift does: keep windows to
what a rollout step covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from shipway.store.feedback import recorded_outcomes
from shipway.store.outcomes import OutputReader
from shipway.store.rollups import quantile

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = ["SHADOW_SUFFIX", "Comparison", "Disagreement", "VersionFigures", "compare_versions", "cut_document"]

_EXAMPLE_CHARS = 500
#: What serving appends to a request id to log the shadow candidate's answer to it (serving/candidates.py).
SHADOW_SUFFIX = ":shadow"


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
    records: bool = True  # whether the records were read (agreement and accuracy); else rollups only

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
            "records": self.records,
            "paired": self.paired,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "per_class": {
                label: {"paired": n, "agreed": k, "agreement": k / n}
                for label, (n, k) in sorted(self.per_class.items(), key=lambda item: (-item[1][0], item[0]))
            },
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


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
    records: bool = True,
) -> Comparison:
    """Compare `candidate` with `live` (default: the other version that answered most in the window).

    Requests, errors and latency come from the log's per-minute rollups (failed requests are
    counted there, not logged), so those figures cover the window rounded out to whole minutes,
    as the dashboard's do. Agreement and accuracy come from the logged records. Labels are read
    from the outputs as the monitoring settings say (`reader`, the usual field names by
    default); an output without a label is compared whole. With `records=False` only the
    rollups are read (a few hundred rows however busy the service): no agreement or accuracy.
    """
    reader = reader or OutputReader()
    counted = _rollups(store, service, since, until)
    if live is None:
        others = sorted((-n, v) for v, (n, _, _) in counted.items() if v != candidate)
        live = others[0][1] if others else ""
    result = Comparison(service, VersionFigures(live), VersionFigures(candidate), since, until)
    for figures in (result.live, result.candidate):
        n, errors, histogram = counted.get(figures.version, (0, 0, []))
        figures.requests, figures.errors = n, errors
        figures.latency_p50_ms, figures.latency_p99_ms = quantile(histogram, 0.5), quantile(histogram, 0.99)
    result.records = records
    if not records:
        return result
    truth = _labels(store, service, since, until)
    waiting: dict[str, dict[str, str]] = {live: {}, candidate: {}}  # answered, not yet paired: id -> label
    disagreements: dict[tuple[str, str], Disagreement] = {}
    for record in store.iter_predictions(service=service, since=since, until=until):
        version = record.model_version
        if version not in waiting or record.status >= 400:
            continue
        figures = result.live if version == live else result.candidate
        request_id = record.request_id.removesuffix(SHADOW_SUFFIX)
        actual = truth.get(request_id)
        predicted, _, rank = reader(record.outputs, "label", actual)
        label = predicted if predicted is not None else _whole(record.outputs)
        if actual is not None:
            figures.labelled += 1
            figures.correct += rank == 1
        other = candidate if version == live else live
        paired = waiting[other].pop(request_id, None)
        if paired is None:
            waiting[version][request_id] = label
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
            found.examples.append({"request_id": request_id, "ts": record.ts, "inputs": cut_document(record.inputs)})
    result.disagreements = sorted(disagreements.values(), key=lambda d: (-d.count, d.live, d.candidate))
    return result


def _rollups(
    store: Store, service: str, since: float, until: float
) -> dict[str, tuple[int, int, list[tuple[int, int]]]]:
    """Per model version over the window's whole minutes: requests, errors and the latency histogram."""
    ph = store.placeholder
    first, last = int(since // 60), -int(-until // 60)
    found: dict[str, tuple[int, int, list[tuple[int, int]]]] = {}
    for version, status, n in store._query(
        f"SELECT model_version, status, SUM(n) FROM prediction_counts WHERE service = {ph} AND minute >= {ph} "
        f"AND minute < {ph} GROUP BY model_version, status",
        [service, first, last],
    ):
        requests, errors, histogram = found.get(str(version), (0, 0, []))
        found[str(version)] = (requests + int(n), errors + int(n) * (int(status) >= 400), histogram)
    for version, bucket, n in store._query(
        f"SELECT model_version, bucket, SUM(n) FROM prediction_latency WHERE service = {ph} AND minute >= {ph} "
        f"AND minute < {ph} GROUP BY model_version, bucket",
        [service, first, last],
    ):
        found.setdefault(str(version), (0, 0, []))[2].append((int(bucket), int(n)))
    return found


def _labels(store: Store, service: str, since: float, until: float) -> dict[str, Any]:
    """The true labels that came back for predictions of the window, by request id."""
    return {rid: found["label"] for rid, found in recorded_outcomes(store, service, since, until, ("label",)).items()}


def _whole(outputs: bytes) -> str:
    """An output without a label, as text to compare whole."""
    try:
        return orjson.dumps(orjson.loads(outputs), option=orjson.OPT_SORT_KEYS).decode()[:_EXAMPLE_CHARS]
    except orjson.JSONDecodeError:
        return bytes(outputs).decode("utf-8", "replace")[:_EXAMPLE_CHARS]


def cut_document(document: Any, limit: int = _EXAMPLE_CHARS) -> Any:
    """A logged JSON document (bytes or text) for an example: decoded, or its text cut at `limit`."""
    text = bytes(document).decode("utf-8", "replace") if isinstance(document, bytes | bytearray) else document
    if not isinstance(text, str):
        return text
    if len(text) > limit:
        return text[: limit - 1] + "…"
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
