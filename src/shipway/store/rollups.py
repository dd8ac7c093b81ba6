"""Per-minute rollups of the prediction log, kept as predictions are written.

The writer folds each batch into a few rows per minute (counts, summed latency,
a latency histogram) in the same transaction as the batch, so metrics over
millions of predictions read thousands of rows. Latency buckets are spaced by a
factor of `GROWTH`: a quantile read from them is within GROWTH ** 0.5 - 1
(under 5%) of an observed latency, relative.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from shipway.store.records import PredictionRecord

if TYPE_CHECKING:
    from shipway.store.base import Executor

__all__ = ["GROWTH", "bucket_bounds", "latency_bucket", "quantile", "rollup", "write_rollups"]

GROWTH = 1.1
_LOG_GROWTH = math.log(GROWTH)
_FLOOR_MS = 0.001  # latencies under a microsecond share bucket 0


def _upserts(unit: str, suffix: str) -> tuple[str, str]:
    counts = (
        f"INSERT INTO prediction_counts{suffix} ({unit}, service, model_version, rules_version, status, decision, "
        "n, latency_sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        f"ON CONFLICT ({unit}, service, model_version, rules_version, status, decision) DO UPDATE SET "
        f"n = prediction_counts{suffix}.n + excluded.n, "
        f"latency_sum = prediction_counts{suffix}.latency_sum + excluded.latency_sum"
    )
    latency = (
        f"INSERT INTO prediction_latency{suffix} ({unit}, service, model_version, rules_version, bucket, n) "
        f"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT ({unit}, service, model_version, rules_version, bucket) "
        f"DO UPDATE SET n = prediction_latency{suffix}.n + excluded.n"
    )
    return counts, latency


UPSERT_COUNTS, UPSERT_LATENCY = _upserts("minute", "")
UPSERT_COUNTS_HOURLY, UPSERT_LATENCY_HOURLY = _upserts("hour", "_hourly")


def write_rollups(run: Executor, records: Iterable[PredictionRecord]) -> None:
    """Fold records into the minute and hour rollups, inside the caller's transaction."""
    counts, latency = rollup(records)
    run.many(UPSERT_COUNTS, counts)
    run.many(UPSERT_LATENCY, latency)
    run.many(UPSERT_COUNTS_HOURLY, _hourly(counts, 2))
    run.many(UPSERT_LATENCY_HOURLY, _hourly(latency, 1))


def _hourly(rows: list[tuple[Any, ...]], values: int) -> list[tuple[Any, ...]]:
    """Minute rows summed into hours (the last `values` columns are the sums)."""
    hours: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        key = (row[0] // 60, *row[1:-values])
        found = hours.get(key)
        if found is None:
            hours[key] = list(row[-values:])
        else:
            for i, v in enumerate(row[-values:]):
                found[i] += v
    return [(*k, *v) for k, v in hours.items()]


def latency_bucket(ms: float) -> int:
    """The histogram bucket of a latency in milliseconds: 0 up to a microsecond, then log-spaced."""
    if ms <= _FLOOR_MS:
        return 0
    return 1 + int(math.log(ms / _FLOOR_MS) / _LOG_GROWTH)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The latencies (ms) a bucket holds, [low, high)."""
    if bucket <= 0:
        return 0.0, _FLOOR_MS
    return _FLOOR_MS * GROWTH ** (bucket - 1), _FLOOR_MS * GROWTH**bucket


def rollup(records: Iterable[PredictionRecord]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The count rows and latency rows that `records` add, ready for the two upserts."""
    # Keyed by the raw decision bytes (decoded once per distinct key below): this runs on the
    # writer thread, which shares a core with the request path.
    counts: dict[tuple[Any, ...], list[float]] = {}
    latency: dict[tuple[Any, ...], int] = {}
    log, floor, step = math.log, _FLOOR_MS, _LOG_GROWTH
    for r in records:
        minute = int(r.ts // 60)
        ms = r.latency_ms
        key = (minute, r.service, r.model_version, r.rules_version, r.status, r.decision)
        found = counts.get(key)
        if found is None:
            counts[key] = [1, ms]
        else:
            found[0] += 1
            found[1] += ms
        lkey = (
            minute,
            r.service,
            r.model_version,
            r.rules_version,
            0 if ms <= floor else 1 + int(log(ms / floor) / step),
        )
        latency[lkey] = latency.get(lkey, 0) + 1
    count_rows: dict[tuple[Any, ...], list[float]] = {}
    for (minute, service, model, rules, status, decision), (n, total) in counts.items():
        text = "" if decision is None else decision.decode("utf-8", "replace")
        row = count_rows.setdefault((minute, service, model, rules or "", status, text), [0, 0.0])
        row[0] += n
        row[1] += total
    return (
        [(*k, int(v[0]), v[1]) for k, v in count_rows.items()],
        [(m, s, mv, rv or "", b, n) for (m, s, mv, rv, b), n in latency.items()],
    )


def quantile(histogram: Sequence[tuple[int, int]], q: float) -> float | None:
    """The q-quantile (0..1) of a latency histogram given as (bucket, count) pairs, in ms.

    Returns the geometric middle of the bucket that holds it, so the answer is
    within GROWTH ** 0.5 - 1 of a latency that was observed in that bucket.
    """
    total = sum(n for _, n in histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bucket, n in sorted(histogram):
        seen += n
        if seen >= rank:
            low, high = bucket_bounds(bucket)
            return math.sqrt(low * high) if low > 0 else high / 2
    low, high = bucket_bounds(max(b for b, _ in histogram))
    return math.sqrt(low * high)
