"""Per-minute rollups of the prediction log, kept as predictions are written.

The writer folds each batch into a few rows per minute (counts, summed latency,
a latency histogram) in the same transaction as the batch, so metrics over
millions of predictions read thousands of rows. Latency buckets are spaced by a
factor of `GROWTH`: a quantile read from them is within GROWTH ** 0.5 - 1
(under 5%) of an observed latency, relative.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from shipway.store.records import LogColumns

if TYPE_CHECKING:
    from shipway.store.base import Executor

__all__ = [
    "GROWTH",
    "Folded",
    "bucket_bounds",
    "fold",
    "latency_bucket",
    "quantile",
    "rollup",
    "write_drops",
    "write_rollups",
]

GROWTH = 1.1
_FLOOR_MS = 0.001  # latencies up to a microsecond share bucket 0
# Bucket k > 0 holds latencies in (BOUNDS[k - 1], BOUNDS[k]]; bisect finds it in C.
# The last bound is about 11 days; anything above shares one last bucket.
_BOUNDS = [_FLOOR_MS * GROWTH**k for k in range(291)]


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


Folded = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def fold(groups: Sequence[LogColumns]) -> Folded:
    """The rows a batch adds to the minute and hour rollups (counts, latency, hourly counts,
    hourly latency), computed before the transaction that writes them."""
    counts, latency = rollup(groups)
    return counts, latency, _hourly(counts, 2), _hourly(latency, 1)


def write_rollups(run: Executor, groups: Sequence[LogColumns], folded: Folded | None = None) -> None:
    """Fold log entries, as columns per context, into the minute and hour rollups, inside the
    caller's transaction (`folded`: what `fold(groups)` gave, when it ran before)."""
    counts, latency, counts_hourly, latency_hourly = fold(groups) if folded is None else folded
    run.many(UPSERT_COUNTS, counts)
    run.many(UPSERT_LATENCY, latency)
    run.many(UPSERT_COUNTS_HOURLY, counts_hourly)
    run.many(UPSERT_LATENCY_HOURLY, latency_hourly)


UPSERT_DROPS = (
    "INSERT INTO log_drops (minute, service, n) VALUES (?, ?, ?) "
    "ON CONFLICT (minute, service) DO UPDATE SET n = log_drops.n + excluded.n"
)


def write_drops(run: Executor, counts: Mapping[tuple[int, str], int]) -> None:
    """Add dropped prediction records, counted per (minute, service), to `log_drops`."""
    run.many(UPSERT_DROPS, [(minute, service, n) for (minute, service), n in counts.items()])


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
    return bisect_left(_BOUNDS, ms)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The latencies (ms) a bucket holds, (low, high]."""
    if bucket <= 0:
        return 0.0, _FLOOR_MS
    if bucket < len(_BOUNDS):
        return _BOUNDS[bucket - 1], _BOUNDS[bucket]
    return _FLOOR_MS * GROWTH ** (bucket - 1), _FLOOR_MS * GROWTH**bucket


def rollup(groups: Sequence[LogColumns]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The count rows and latency rows that entries as columns per context add, ready for the two upserts."""
    counts: dict[tuple[Any, ...], list[float]] = {}
    buckets: dict[tuple[Any, ...], int] = {}
    for group in groups:
        service, model, rules = group.context[:3]
        head = (service, model, rules or "")
        for minute, statuses, decisions, latencies in _by_minute(group):
            for (status, decision), (n, total) in _counts(statuses, decisions, latencies).items():
                row = counts.setdefault((minute, *head, status, decision or ""), [0, 0.0])
                row[0] += n
                row[1] += total
            for bucket, n in _histogram(latencies).items():
                key = (minute, *head, bucket)
                buckets[key] = buckets.get(key, 0) + n
    return (
        [(*k, int(v[0]), v[1]) for k, v in counts.items()],
        [(*k, n) for k, n in buckets.items()],
    )


# The loops below run on the writer thread, which shares a core with the request path: they
# work column by column, so that the per-entry work is C (zip, Counter, bisect, sum), and take
# the common case (one minute, one status, one decision) without a per-entry Python step.


def _by_minute(group: LogColumns) -> list[tuple[int, Sequence[int], Sequence[str | None], Sequence[float]]]:
    """(minute, statuses, decisions, latencies) for each minute the entries of one context span."""
    times, latencies, statuses, decisions = group.times, group.latencies, group.statuses, group.decisions
    first, last = int(min(times) // 60), int(max(times) // 60)
    if first == last:
        return [(first, statuses, decisions, latencies)]
    split: dict[int, list[tuple[int, str | None, float]]] = {}
    for t, status, decision, ms in zip(times, statuses, decisions, latencies, strict=True):
        split.setdefault(int(t // 60), []).append((status, decision, ms))
    return [(minute, *zip(*rows, strict=True)) for minute, rows in split.items()]  # type: ignore[misc]


def _histogram(latencies: Sequence[float]) -> dict[int, int]:
    """Count per latency bucket: `latency_bucket` of each, counted from the sorted latencies
    with a bisect per bucket they span (half the time of a bisect per entry)."""
    total = sum(latencies)
    if total != total:  # a NaN, which sorting does not place; inf - inf lands here too
        return Counter(map(bisect_left, repeat(_BOUNDS), latencies))
    ordered = sorted(latencies)
    counts: dict[int, int] = {}
    done = 0
    top = len(_BOUNDS)
    for bucket in range(bisect_left(_BOUNDS, ordered[0]), bisect_left(_BOUNDS, ordered[-1]) + 1):
        # Bucket k holds (_BOUNDS[k - 1], _BOUNDS[k]]; the last one everything above.
        upto = bisect_right(ordered, _BOUNDS[bucket], done) if bucket < top else len(ordered)
        if upto > done:
            counts[bucket] = upto - done
            done = upto
    return counts


def _counts(
    statuses: Sequence[int], decisions: Sequence[str | None], latencies: Sequence[float]
) -> dict[tuple[int, str | None], tuple[int, float]]:
    """Count and summed latency per (status, decision)."""
    if statuses.count(statuses[0]) == len(statuses):
        status = statuses[0]
        if decisions.count(decisions[0]) == len(decisions):
            return {(status, decisions[0]): (len(decisions), sum(latencies))}
        per_decision = Counter(decisions)
        sums = dict.fromkeys(per_decision, 0.0)
        for decision, ms in zip(decisions, latencies, strict=True):
            sums[decision] += ms
        return {(status, d): (n, sums[d]) for d, n in per_decision.items()}
    keys = list(zip(statuses, decisions, strict=True))
    totals = dict.fromkeys(keys, 0.0)
    for key, ms in zip(keys, latencies, strict=True):
        totals[key] += ms
    return {key: (n, totals[key]) for key, n in Counter(keys).items()}


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
