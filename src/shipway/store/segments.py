"""Prediction log segments: the SQLite store keeps each written batch as one row.

A segment holds the records of one flush that share a context (service, model,
rules, dataset, run) as one JSON array of
`[request_id, ts, latency_ms, status, inputs, outputs, decision, shadow]`,
the JSON documents nested as strings: the log's entries without their context,
so a segment is one orjson call over the batch. One row per batch costs the writer
well under a microsecond a record, where a row per record cost five
(docs/benchmarks.md); reads decode whole segments, which is what scans over
millions of rows want.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from shipway.core.collector import collector_paused
from shipway.store.records import Context, LogColumns, PredictionRecord

__all__ = ["decode", "encode", "merge_by_ts", "oldest", "trim"]


def encode(group: LogColumns) -> bytes:
    """One segment body from the entries of one context; orjson.JSONEncodeError if a
    document is not valid UTF-8 text."""
    with collector_paused():  # a tuple per row, freed as soon as they are encoded
        return orjson.dumps(group.rows())


def decode(
    body: bytes | str, context: Context, since: float | None = None, until: float | None = None
) -> list[PredictionRecord]:
    """The records of a segment with `since <= ts < until`, in ts order."""
    service, model_version, rules_version, dataset_version, run_id, mode = context
    rows = orjson.loads(body)
    if since is not None or until is not None:
        low = -float("inf") if since is None else since
        high = float("inf") if until is None else until
        rows = [row for row in rows if low <= row[1] < high]
    rows.sort(key=lambda row: row[1])
    return [
        PredictionRecord(
            request_id=row[0],
            ts=row[1],
            service=service,
            model_version=model_version,
            latency_ms=row[2],
            inputs=row[4].encode(),
            outputs=row[5].encode(),
            rules_version=rules_version,
            dataset_version=dataset_version,
            run_id=run_id,
            status=row[3],
            decision=None if row[6] is None else row[6].encode(),
            shadow=None if row[7] is None else row[7].encode(),
            mode=mode,
        )
        for row in rows
    ]


def merge_by_ts(segments: Iterable[tuple[float, list[PredictionRecord]]]) -> Iterator[PredictionRecord]:
    """Records of ts-sorted segments, given in order of their first ts, yielded in ts order.

    Segments of several workers overlap in time; a record can be yielded once no
    segment still to come can start before it. Segments that do not overlap (one
    worker) pass straight through.
    """
    pending: list[PredictionRecord] = []
    for ts_min, records in segments:
        cut = bisect.bisect_left(pending, ts_min, key=_ts)
        yield from pending[:cut]
        rest = pending[cut:]
        if not rest:
            pending = records
        elif not records or rest[-1].ts <= records[0].ts:
            pending = rest + records
        else:
            pending = list(heapq.merge(rest, records, key=_ts))
    yield from pending


def _ts(r: PredictionRecord) -> float:
    return r.ts


def oldest(run: Any) -> float | None:
    """The `ts` of the oldest entry of the log, segments and older versions' rows alike; None when empty."""
    low = run("SELECT MIN(ts_min) FROM prediction_segments")[0][0], run("SELECT MIN(ts) FROM prediction_rows")[0][0]
    return min((t for t in low if t is not None), default=None)


def trim(run: Any, cutoff: float) -> int:
    """Delete the entries logged before `cutoff`, in one transaction; how many. A segment whose
    entries are all older goes whole; one that straddles the cutoff is rewritten with the rest."""
    gone = run("SELECT COALESCE(SUM(n), 0) FROM prediction_segments WHERE ts_max < ?", [cutoff])[0][0]
    gone += run("SELECT COUNT(*) FROM prediction_rows WHERE ts < ?", [cutoff])[0][0]
    old = "SELECT id FROM prediction_segments WHERE ts_min < ? AND ts_max < ?"
    run(f"DELETE FROM request_index WHERE segment_id IN ({old})", [cutoff, cutoff])
    run("DELETE FROM prediction_segments WHERE ts_min < ? AND ts_max < ?", [cutoff, cutoff])
    run("DELETE FROM prediction_rows WHERE ts < ?", [cutoff])
    for sid, body in run("SELECT id, body FROM prediction_segments WHERE ts_min < ?", [cutoff]):
        rows = orjson.loads(body)
        kept = [row for row in rows if row[1] >= cutoff]
        gone += len(rows) - len(kept)
        times = [row[1] for row in kept]
        run(
            "UPDATE prediction_segments SET body = ?, n = ?, ts_min = ?, ts_max = ? WHERE id = ?",
            [orjson.dumps(kept).decode(), len(kept), min(times), max(times), sid],
        )
    return int(gone)
