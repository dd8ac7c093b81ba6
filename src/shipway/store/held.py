"""Records waiting in memory because neither the store nor the spool took them.

The prediction log keeps them, up to a bound, and offers them again with the next
batch. Beyond the bound the oldest go, and the caller counts them as dropped: a
record is written, spooled, held or counted, never forgotten.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from shipway.store.log_counts import drops_by_minute
from shipway.store.records import LogColumns, size, split_at

__all__ = ["Held"]

logger = logging.getLogger("shipway.store")

# While records are held, say how many at most this often (and at every drop).
_REPORT_S = 30.0


class Held:
    """At most `limit` log entries, as columns per context, oldest first; not thread-safe
    (the writer thread owns it; other threads read only its length). `spool_dir` is the
    spool that failed, for the log."""

    def __init__(self, limit: int, spool_dir: Path) -> None:
        self.limit = limit
        self.spool_dir = spool_dir
        self._groups: list[LogColumns] = []
        self._size = 0
        self._since = 0.0  # when the spool first failed; 0 while records flow
        self._next_report = 0.0
        self._next_try = 0.0  # the spool is not tried again before this
        self._error: OSError | None = None

    @property
    def spool_resting(self) -> bool:
        """True while the spool failed too recently to be tried again: new records join the
        held ones without the cost of encoding them all for a spool that is likely still down."""
        return bool(self._since) and time.monotonic() < self._next_try

    def __len__(self) -> int:
        return self._size

    def by_minute(self) -> Counter[tuple[int, str]]:
        """How many are held per minute of their time and service (what `log_drops` counts)."""
        return drops_by_minute(self._groups)

    def take(self) -> list[LogColumns]:
        """Everything held, oldest first; the holder is empty afterwards."""
        groups, self._groups, self._size = self._groups, [], 0
        return groups

    def keep(self, groups: list[LogColumns]) -> Counter[tuple[int, str]]:
        """Add `groups` (newer than what is held). Beyond the limit the oldest entries go:
        how many, per minute of their time and service."""
        merged = self._groups + groups
        n = size(merged)
        dropped: Counter[tuple[int, str]] = Counter()
        if n > self.limit:
            oldest, merged = split_at(merged, n - self.limit)
            dropped = drops_by_minute(oldest)
            n = self.limit
        self._groups, self._size = merged, n
        return dropped

    def report(self, exc: OSError | None, dropped: int, dropped_total: int, retry_s: float) -> None:
        """Log what is held after `keep`: when the spool first fails, at every drop, and every
        30 s in between. `exc` is the spool's error, None when it was not tried (resting)."""
        now = time.monotonic()
        if exc is not None:
            self._error, self._next_try = exc, now + retry_s
        first = not self._since
        if not (first or dropped or now >= self._next_report):
            return
        self._since = self._since or now
        self._next_report = now + _REPORT_S
        logger.log(
            logging.ERROR if first or dropped else logging.WARNING,
            "cannot write prediction records to the store or spool them to %s (%s); %d held in memory "
            "(at most %d), %d dropped just now, %d dropped since start; retrying every %s s",
            self.spool_dir,
            self._error,
            self._size,
            self.limit,
            dropped,
            dropped_total,
            retry_s,
        )

    def released(self, dropped_total: int) -> None:
        """Records reached the store or the spool again: say so once, after a `report`."""
        if self._since:
            logger.info(
                "prediction records reach the store or the spool at %s again, after %.0f s; %d dropped since start",
                self.spool_dir,
                time.monotonic() - self._since,
                dropped_total,
            )
            self._since = 0.0
