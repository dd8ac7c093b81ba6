"""The records the store keeps: served predictions, their later outcomes, rules and alert events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ROW_COLUMNS",
    "AlertEvent",
    "Context",
    "FeedbackOutcome",
    "FeedbackRecord",
    "LogColumns",
    "LogEntry",
    "PredictionRecord",
    "RulesEvent",
    "columns_of",
    "columns_of_records",
    "context_of",
    "entries_of_columns",
    "entry_of",
    "record_of",
    "records_of_columns",
    "size",
    "split_at",
]

#: What the records of one service deployment share: service, model version,
#: rules version, dataset version, run id.
Context = tuple[str, str, str | None, str | None, str | None]

#: One prediction as the prediction log's slower paths (spool replay, redaction,
#: rejected records) carry it: `(context, request_id, ts, latency_ms, status,
#: inputs, outputs, decision, shadow)`, the JSON documents as text. The fast path
#: carries entries as columns (`LogColumns`).
LogEntry = tuple[Context, str, float, float, int, str, str, str | None, str | None]


@dataclass(slots=True)
class PredictionRecord:
    """One prediction as served, with the ids that make it explainable.

    `inputs` and `outputs` are already-serialised JSON documents: the serving
    layer hands over the request and response bodies it has anyway, so the
    request path never serialises twice.

    `(request_id, ts)` identifies a record: a spool replay skips records already
    stored, which is what makes replaying after an outage safe.
    """

    request_id: str
    ts: float  # unix seconds
    service: str
    model_version: str
    latency_ms: float
    inputs: bytes
    outputs: bytes
    rules_version: str | None = None
    dataset_version: str | None = None
    run_id: str | None = None
    status: int = 200
    decision: bytes | None = None  # JSON: the rules' decision that was returned
    shadow: bytes | None = None  # JSON: what shadow rules decided, logged and not returned


def context_of(r: PredictionRecord) -> Context:
    return (r.service, r.model_version, r.rules_version, r.dataset_version, r.run_id)


def entry_of(r: PredictionRecord, errors: str = "strict") -> LogEntry:
    """The log entry of a record; UnicodeDecodeError for a document that is not UTF-8
    (`errors="surrogateescape"` keeps such bytes, for `record_of` to give back)."""
    return (
        context_of(r),
        r.request_id,
        r.ts,
        r.latency_ms,
        r.status,
        r.inputs.decode("utf-8", errors),
        r.outputs.decode("utf-8", errors),
        None if r.decision is None else r.decision.decode("utf-8", errors),
        None if r.shadow is None else r.shadow.decode("utf-8", errors),
    )


def columns_of_records(records: Iterable[PredictionRecord], errors: str = "strict") -> list[LogColumns]:
    """Records as the log's columns per context; `errors` as for `entry_of`."""
    return columns_of(entry_of(r, errors) for r in records)


#: The columns of `LogColumns` after its context: the fields of a segment's row, in order.
ROW_COLUMNS = ("request_ids", "times", "latencies", "statuses", "inputs", "outputs", "decisions", "shadows")


@dataclass(slots=True)
class LogColumns:
    """Log entries of one context as columns: what the prediction log's buffer gives the
    store, which encodes a segment and folds the rollups column by column."""

    context: Context
    request_ids: Sequence[str]
    times: Sequence[float]
    latencies: Sequence[float]
    statuses: Sequence[int]
    inputs: Sequence[str]
    outputs: Sequence[str]
    decisions: Sequence[str | None]
    shadows: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.request_ids)

    def rows(self) -> list[tuple[str, float, float, int, str, str, str | None, str | None]]:
        """The entries without their context."""
        return list(zip(*[getattr(self, name) for name in ROW_COLUMNS], strict=True))

    def entries(self) -> list[LogEntry]:
        return [(self.context, *row) for row in self.rows()]


def columns_of(entries: Iterable[LogEntry]) -> list[LogColumns]:
    """Entries as columns, one group per context, in order of first appearance."""
    groups: dict[Context, list[LogEntry]] = {}
    for e in entries:
        group = groups.get(e[0])
        if group is None:
            groups[e[0]] = [e]
        else:
            group.append(e)
    return [LogColumns(context, *zip(*(e[1:] for e in group), strict=True)) for context, group in groups.items()]


def size(groups: Iterable[LogColumns]) -> int:
    """How many entries the groups hold."""
    return sum(map(len, groups))


def split_at(groups: Sequence[LogColumns], n: int) -> tuple[list[LogColumns], list[LogColumns]]:
    """The first `n` entries of `groups` and the rest, as groups in the same order; at most one
    group is cut (its columns sliced), nothing is decoded."""
    head: list[LogColumns] = []
    for i, group in enumerate(groups):
        if n <= 0:
            return head, list(groups[i:])
        if len(group) <= n:
            head.append(group)
            n -= len(group)
            continue
        head.append(_sliced(group, 0, n))
        return head, [_sliced(group, n, len(group)), *groups[i + 1 :]]
    return head, []


def _sliced(group: LogColumns, start: int, end: int) -> LogColumns:
    return LogColumns(group.context, *(getattr(group, name)[start:end] for name in ROW_COLUMNS))


def entries_of_columns(groups: Iterable[LogColumns]) -> list[LogEntry]:
    return [e for g in groups for e in g.entries()]


def records_of_columns(groups: Iterable[LogColumns]) -> list[PredictionRecord]:
    return [record_of(e) for e in entries_of_columns(groups)]


def record_of(e: LogEntry) -> PredictionRecord:
    """The record of a log entry (the inverse of `entry_of`)."""
    (service, model_version, rules_version, dataset_version, run_id), request_id, ts, latency_ms, status = e[:5]
    return PredictionRecord(
        request_id,
        ts,
        service,
        model_version,
        latency_ms,
        e[5].encode("utf-8", "surrogateescape"),
        e[6].encode("utf-8", "surrogateescape"),
        rules_version,
        dataset_version,
        run_id,
        status,
        None if e[7] is None else e[7].encode("utf-8", "surrogateescape"),
        None if e[8] is None else e[8].encode("utf-8", "surrogateescape"),
    )


@dataclass(slots=True)
class RulesEvent:
    """One entry of a service's rules history: a version applied or rolled back to.

    The newest event of a service names its active rules; `options` holds the
    rule set's mode (on, shadow, off) and canary settings as given at apply time.
    """

    id: int
    service: str
    version: str
    action: str  # "apply" or "rollback"
    ts: float
    actor: str | None
    options: dict[str, object]
    source: str


@dataclass(slots=True)
class FeedbackRecord:
    """An outcome that arrived after the prediction it belongs to.

    `name` says which outcome ("label" is the true class; others, such as
    "clicked" or "reopened", are numbers or booleans) and `value` is its JSON
    document. `ts` is when the outcome was observed or received.
    """

    request_id: str
    value: bytes  # JSON
    name: str = "label"
    ts: float = 0.0


@dataclass(slots=True)
class FeedbackOutcome:
    """What became of a batch of feedback: counts, and the ids that need a look.

    `unknown` ids match no logged prediction (yet: they stay pending, and are
    joined if the prediction arrives later); `duplicates` replaced an earlier
    value of the same outcome; `late` arrived more than the late threshold after
    the prediction.
    """

    accepted: int = 0
    duplicates: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "joined": self.accepted - len(self.unknown),
            "duplicates": len(self.duplicates),
            "unknown": len(self.unknown),
            "late": len(self.late),
            "duplicate_ids": self.duplicates[:100],
            "unknown_ids": self.unknown[:100],
            "late_ids": self.late[:100],
        }


@dataclass(slots=True)
class AlertEvent:
    """A change of an alert's state: it started firing, or it recovered."""

    id: int
    service: str
    key: str
    firing: bool
    ts: float
    detail: dict[str, object]
