"""What the prediction log counted since it started, and the counts the store has yet to take.

The counters feed `PredictionLog.stats` (and so the `shipway_prediction_log_records`
metric). Two kinds of counts wait in memory for the store, and are written by the
writer thread while it is up (`write_to`): failed requests, which are counted in the
rollups and not logged as records, and dropped records, per (minute, service), for
the store's `log_drops` table, which alert rules read as `log_dropped`.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from typing import TYPE_CHECKING

from shipway.errors import StoreError
from shipway.store.records import LogColumns, PredictionRecord

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = ["COUNTERS", "LogCounts", "drops_by_minute"]

logger = logging.getLogger("shipway.store")

COUNTERS = ("written", "spooled", "replayed", "dropped", "sampled_out", "redacted_out", "redaction_failed", "rejected")


class LogCounts:
    """Thread-safe counters: the request path, the writer and `close()` all count. At most
    `max_failures` failed requests wait for the store."""

    def __init__(self, max_failures: int) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._drops: Counter[tuple[int, str]] = Counter()  # for the store's log_drops
        self._failures: deque[PredictionRecord] = deque()  # for the store's rollups
        self._max_failures = max_failures

    def failure(self, record: PredictionRecord) -> None:
        """A failed request, for the rollups; past `max_failures` waiting, not counted."""
        if len(self._failures) < self._max_failures:
            self._failures.append(record)

    def write_to(self, store: Store) -> None:
        """Write what waits for the store. Failed requests it refuses are not retried (counts
        are worth less than records: they are not spooled); drops wait for the next call."""
        failures = self._failures
        if failures:
            drained = [failures.popleft() for _ in range(len(failures))]
            try:
                store.write_rollups(drained)
            except StoreError as exc:
                logger.warning("could not count %d failed requests in the store: %s", len(drained), exc)
        drops = self.take_drops()
        if drops:
            try:
                store.write_drops(drops)
            except StoreError as exc:
                logger.warning("could not count %d dropped records in the store: %s", sum(drops.values()), exc)
                self.restore_drops(drops)

    def take_failures(self) -> list[PredictionRecord]:
        """The failed requests waiting for the store, for the writer process to write them."""
        failures = self._failures
        return [failures.popleft() for _ in range(len(failures))]

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
