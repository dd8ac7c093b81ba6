"""Feedback: outcomes that arrive after the prediction, joined to it by request id.

The join happens once, when the outcome is written (or, for an id the log does
not hold yet, when the prediction turns up later): the prediction's time,
versions, predicted label, confidence and the rank of the true label are
copied into the feedback row, so metrics read one table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from shipway.errors import StoreError
from shipway.store.outcome_rollups import OutcomeSums
from shipway.store.outcomes import OutputReader, plain_actual
from shipway.store.records import FeedbackOutcome, FeedbackRecord, PredictionRecord

if TYPE_CHECKING:
    from shipway.store.base import Executor, Store

__all__ = ["Describe", "recorded_outcomes", "resolve_pending", "write_feedback"]

# What the prediction said, read from its logged outputs for one outcome:
# (predicted label, confidence, rank of the actual value among the predicted
# labels, 1 for the top one; None where it does not apply).
Describe = Callable[[bytes, str, Any], tuple[str | None, float | None, int | None]]

_UPSERT = (
    "INSERT INTO feedback (request_id, name, value, actual, number, ts, received, service, pred_ts, "
    "model_version, rules_version, predicted, confidence, rank) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (request_id, name) DO UPDATE SET value = excluded.value, actual = excluded.actual, "
    "number = excluded.number, ts = excluded.ts, received = excluded.received, service = excluded.service, "
    "pred_ts = excluded.pred_ts, model_version = excluded.model_version, rules_version = excluded.rules_version, "
    "predicted = excluded.predicted, confidence = excluded.confidence, rank = excluded.rank"
)
_JOIN = (
    "UPDATE feedback SET service = ?, pred_ts = ?, model_version = ?, rules_version = ?, predicted = ?, "
    "confidence = ?, rank = ? WHERE request_id = ? AND name = ?"
)
_CHUNK = 500
_HOURLY = (
    "INSERT INTO feedback_hourly (hour, service, model_version, rules_version, name, n, top1, top3, top5, "
    "ranked, number_sum, number_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (hour, service, model_version, rules_version, name) DO UPDATE SET "
    "n = feedback_hourly.n + excluded.n, top1 = feedback_hourly.top1 + excluded.top1, "
    "top3 = feedback_hourly.top3 + excluded.top3, top5 = feedback_hourly.top5 + excluded.top5, "
    "ranked = feedback_hourly.ranked + excluded.ranked, "
    "number_sum = feedback_hourly.number_sum + excluded.number_sum, "
    "number_count = feedback_hourly.number_count + excluded.number_count"
)
_DAILY = (
    "INSERT INTO feedback_daily (day, service, name, predicted, actual, bin, n, confidence_sum) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, service, name, predicted, actual, bin) DO UPDATE SET "
    "n = feedback_daily.n + excluded.n, confidence_sum = feedback_daily.confidence_sum + excluded.confidence_sum"
)
BINS = 10  # calibration bins, equal width over [0, 1]
# The columns of a joined feedback row that its rollup contributions depend on.
_JOINED = (
    "request_id, name, service, pred_ts, model_version, rules_version, rank, number, predicted, actual, confidence"
)


def write_feedback(
    store: Store,
    records: Sequence[FeedbackRecord],
    describe: Describe,
    *,
    late_after_s: float,
    pending_limit: int = 10_000,
) -> FeedbackOutcome:
    """Store outcomes (a newer value of the same request and name replaces the older),
    join them to their predictions, and retry the join of earlier unknown ids."""
    outcome = FeedbackOutcome()
    latest: dict[tuple[str, str], FeedbackRecord] = {}
    for record in records:
        key = (record.request_id, record.name)
        if key in latest:
            outcome.duplicates.append(record.request_id)
        latest[key] = record
    if not latest:
        return outcome
    ids = sorted({request_id for request_id, _ in latest})
    predictions = store._find_predictions(ids)
    received = time.time()
    rows = []
    for (request_id, name), record in latest.items():
        value = _value(record)
        prediction = predictions.get(request_id)
        if prediction is None:
            outcome.unknown.append(request_id)
        elif record.ts - prediction.ts > late_after_s:
            outcome.late.append(request_id)
        rows.append(
            (
                request_id,
                name,
                record.value.decode(),
                *_actual(describe, name, value),
                record.ts or received,
                received,
                *_joined(prediction, describe, name, value),
            )
        )

    def work(run: Executor) -> None:
        hourly = _Hourly()
        for start in range(0, len(ids), _CHUNK):
            part = ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(part))
            stored = run(f"SELECT {_JOINED} FROM feedback WHERE request_id IN ({marks})", part)
            for row in stored:
                if (row[0], row[1]) in latest:
                    outcome.duplicates.append(row[0])
                    hourly.add(row[1:], -1)  # the value it replaces no longer counts
        run.many(_UPSERT, rows)
        for row in rows:
            hourly.add((row[1], *row[7:11], row[13], row[4], row[11], row[3], row[12]), 1)
        hourly.write(run)

    store._transact(work)
    outcome.accepted = len(rows)
    resolve_pending(store, describe, limit=pending_limit)
    return outcome


def resolve_pending(store: Store, describe: Describe, *, limit: int = 10_000, max_age_s: float = 7 * 86400) -> int:
    """Join feedback received in the last `max_age_s` whose prediction was not found before; how many joined."""
    pending = store._query(
        f"SELECT request_id, name, value FROM feedback WHERE pred_ts IS NULL AND received >= {store.placeholder} "
        f"ORDER BY received LIMIT {int(limit)}",
        [time.time() - max_age_s],
    )
    if not pending:
        return 0
    predictions = store._find_predictions(sorted({row[0] for row in pending}))
    updates = [
        (*_joined(predictions[rid], describe, name, orjson.loads(value)), rid, name)
        for rid, name, value in pending
        if rid in predictions
    ]
    if updates:

        def work(run: Executor) -> None:
            run.many(_JOIN, updates)
            hourly = _Hourly()
            values = {(rid, name): _actual(describe, name, orjson.loads(value)) for rid, name, value in pending}
            for u in updates:
                actual, number = values[(u[7], u[8])]
                hourly.add((u[8], u[0], u[1], u[2], u[3], u[6], number, u[4], actual, u[5]), 1)
            hourly.write(run)

        store._transact(work)
    return len(updates)


def recorded_outcomes(
    store: Store, service: str, since: float, until: float, names: Sequence[str] = ("label", "queue")
) -> dict[str, dict[str, Any]]:
    """The outcomes `names` that came back for predictions of [since, until), by request id:
    `{request_id: {name: value}}`. A minute's margin past `until` keeps a shadow record's
    answer, which may be logged a little after the live one."""
    ph = store.placeholder
    marks = ", ".join(ph for _ in names)
    rows = store._query(
        f"SELECT request_id, name, value FROM feedback WHERE service = {ph} AND name IN ({marks}) "
        f"AND pred_ts >= {ph} AND pred_ts < {ph}",
        [service, *names, since, until + 60],
    )
    found: dict[str, dict[str, Any]] = {}
    for request_id, name, value in rows:
        found.setdefault(str(request_id), {})[str(name)] = orjson.loads(value)
    return found


class _Hourly:
    """Contributions of joined feedback rows to feedback_hourly and feedback_daily, summed
    before one upsert each."""

    def __init__(self) -> None:
        self.sums: dict[tuple[Any, ...], list[float]] = {}
        self.daily: dict[tuple[Any, ...], list[float]] = {}
        self.outcomes = OutcomeSums()

    def add(self, row: Sequence[Any], sign: int) -> None:
        """`row`: name, service, pred_ts, model_version, rules_version, rank, number, predicted,
        actual, confidence."""
        name, service, pred_ts, model_version, rules_version, rank, number, predicted, actual, confidence = row
        if pred_ts is None:
            return  # not joined: counts nowhere yet
        day = (int(pred_ts // 86400), service, name, predicted or "", actual or "", bin_of(confidence))
        found = self.daily.setdefault(day, [0, 0.0])
        found[0] += sign
        found[1] += sign * (confidence or 0.0)
        self.outcomes.add(name, service, pred_ts, rank, number, confidence, sign)
        key = (int(pred_ts // 3600), service, model_version or "", rules_version or "", name)
        sums = self.sums.setdefault(key, [0, 0, 0, 0, 0, 0.0, 0])
        ranked = rank is not None
        listed = ranked and rank >= 1  # rank 0: the true label is not in the list
        for i, hit in enumerate(
            (1, listed and rank <= 1, listed and rank <= 3, listed and rank <= 5, ranked, number or 0.0)
        ):
            sums[i] += sign * float(hit)
        sums[6] += sign * (number is not None)

    def write(self, run: Executor) -> None:
        run.many(_DAILY, [(*key, int(n), total) for key, (n, total) in self.daily.items()])
        run.many(
            _HOURLY,
            [(*key, *(int(v) for v in sums[:5]), sums[5], int(sums[6])) for key, sums in self.sums.items()],
        )
        self.outcomes.write(run)


def _value(record: FeedbackRecord) -> Any:
    try:
        return orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        raise StoreError(
            f"feedback for request {record.request_id!r} has a value that is not JSON ({exc}); "
            'send a JSON value such as "card_arrival", true or 3.5'
        ) from exc


def _actual(describe: Describe, name: str, value: Any) -> tuple[str | None, float | None]:
    """The outcome as a label and as a number, read by the project's reader (a binary score's
    named labels are 1 and 0); a label the reader refuses, stored before it was refused, as text only."""
    if isinstance(describe, OutputReader):
        try:
            return describe.actual(name, value)
        except ValueError:
            pass
    return plain_actual(value)


def _joined(
    prediction: PredictionRecord | None, describe: Describe, name: str, value: Any
) -> tuple[str | None, float | None, str | None, str | None, str | None, float | None, int | None]:
    if prediction is None:
        return None, None, None, None, None, None, None
    predicted, confidence, rank = describe(prediction.outputs, name, value)
    return (
        prediction.service,
        prediction.ts,
        prediction.model_version,
        prediction.rules_version or "",
        predicted,
        confidence,
        rank,
    )


def bin_of(confidence: float | None) -> int:
    """The calibration bin of a confidence, -1 for none (SQL: see series.label_breakdown)."""
    if confidence is None:
        return -1
    return min(BINS - 1, max(0, int(confidence * BINS)))
