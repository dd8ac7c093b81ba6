"""What the prediction log counted since it started, and the drops the store has yet to count.

The counters feed `PredictionLog.stats` (and so the `shipway_prediction_log_records`
metric). Dropped records are also counted per (minute, service) until the writer
adds them to the store's `log_drops` table, which alert rules read as `log_dropped`.
"""

from __future__ import annotations

import threading
from collections import Counter

from shipway.store.records import LogColumns

__all__ = ["COUNTERS", "LogCounts", "drops_by_minute"]

COUNTERS = ("written", "spooled", "replayed", "dropped", "sampled_out", "redacted_out", "redaction_failed", "rejected")


class LogCounts:
    """Thread-safe counters: the request path, the writer and `close()` all count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._drops: Counter[tuple[int, str]] = Counter()  # for the store's log_drops

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def dropped(self, counts: Counter[tuple[int, str]]) -> None:
        """Count dropped records, given per (minute, service)."""
        if counts:
            with self._lock:
                self._counts["dropped"] += sum(counts.values())
                self._drops.update(counts)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def take_drops(self) -> Counter[tuple[int, str]]:
        """The drops the store has not counted yet; `restore_drops` them if it cannot."""
        with self._lock:
            drops, self._drops = self._drops, Counter()
        return drops

    def restore_drops(self, drops: Counter[tuple[int, str]]) -> None:
        with self._lock:
            self._drops.update(drops)

    @property
    def unwritten_drops(self) -> int:
        with self._lock:
            return sum(self._drops.values())


def drops_by_minute(groups: list[LogColumns]) -> Counter[tuple[int, str]]:
    """How many entries per minute of their time and service: what `log_drops` counts."""
    counts: Counter[tuple[int, str]] = Counter()
    for g in groups:
        service = g.context[0]
        for ts in g.times:
            counts[(int(ts // 60), service)] += 1
    return counts
