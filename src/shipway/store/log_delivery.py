"""Where the prediction log's writer puts a batch: the store, else the spool, else memory.

`Delivery` owns the writer's view of the store (up or down, when to retry, the spool to
replay when it is back) and the two places a batch goes when the store does not take it:
the spool on local disk, and when the spool fails too, the records held in memory
(store/held.py). Records the store refuses (a document that is not UTF-8, say) are kept
aside as spool lines (store/refusals.py). Only the writer thread calls it. The store handle
is the process's one (store/provider.py), shared with everything else in a worker; the
spool is what this writer adds to the provider's outage policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from shipway.errors import StoreError, StoreUnavailable
from shipway.store.base import safe_url
from shipway.store.held import Held
from shipway.store.log_counts import LogCounts, drops_by_minute
from shipway.store.records import (
    LogColumns,
    LogEntry,
    PredictionRecord,
    columns_of,
    columns_of_records,
    entries_of_columns,
    record_of,
)
from shipway.store.refusals import refused_lines, write_finding_refused
from shipway.store.spool import Spool

if TYPE_CHECKING:  # the package imports this module; the provider imports the package
    from shipway.store.provider import StoreProvider

__all__ = ["Delivery"]

logger = logging.getLogger("shipway.store")

# Even with a healthy store, look now and then for spool files a dead process left.
_ORPHAN_SCAN_S = 30.0


class Delivery:
    """A batch to the store, the spool or memory; every record reaches one of them or is counted."""

    def __init__(
        self,
        stores: StoreProvider,
        spool_dir: Path,
        held: Held,
        counts: LogCounts,
        retry_interval_s: float,
        *,
        owned: bool = False,
    ) -> None:
        self.stores = stores
        self.owned = owned  # a handle of its own (the log used alone), closed with it
        self.spool_dir = spool_dir
        self.held = held
        self.counts = counts
        self.retry_interval_s = retry_interval_s
        self.spool = Spool(spool_dir)
        self.store_up = False
        self._down_logged = False
        self._next_retry = 0.0
        self._next_scan = 0.0

    def due(self) -> None:
        """Try the store again when it is down and the retry interval has passed; while it is
        up, look for orphaned spool files now and then."""
        now = time.monotonic()
        if now >= (self._next_scan if self.store_up else self._next_retry):
            self.recover()

    def deliver(self, groups: list[LogColumns], pause: Callable[[], None] | None = None) -> None:
        """To the store if it is up, else to the spool, else keep in memory; `pause` is called
        before each store transaction (see `Store.write_columns`)."""
        if not groups:
            return
        if self.store_up:
            # Twice: a connection the server closed while idle fails once, and the
            # store reconnects on the next call; that is no outage worth spooling for.
            for attempt in (1, 2):
                try:
                    self.counts.add("written", self._write(groups, pause=pause))
                    self.held.released(self._dropped_total())
                    return
                except StoreUnavailable as exc:
                    if attempt == 2:
                        self._mark_down(exc)
        if self.held.spool_resting:
            self.hold(groups, None)
            return
        entries = entries_of_columns(groups)
        try:
            self.spool.append([record_of(e) for e in entries])
            self.counts.add("spooled", len(entries))
        except OSError as exc:
            self.hold(groups, exc)
            return
        except Exception as exc:  # a record the spool cannot encode: keep it aside
            self._reject(entries, exc)
        self.held.released(self._dropped_total())

    def hold(self, groups: list[LogColumns], exc: OSError | None) -> None:
        """Keep `groups` in memory (newer than what is held); the oldest past the bound are counted."""
        dropped = self.held.keep(groups)
        self.counts.dropped(dropped)
        self.held.report(exc, sum(dropped.values()), self._dropped_total(), self.retry_interval_s)

    def recover(self) -> None:
        """Open the store and replay the spool; on success the store is up."""
        now = time.monotonic()
        self._next_retry = now + self.retry_interval_s
        self._next_scan = now + _ORPHAN_SCAN_S
        was_down = self._down_logged
        try:
            self.stores.get()
            replayed = self.spool.replay(self._replay_chunk)
        except StoreError as exc:  # StoreUnavailable, or a URL or schema that cannot work
            self._mark_down(exc)
            return
        except OSError:
            # An unreadable spool file must not keep a healthy store from being used.
            logger.exception("cannot replay the prediction spool at %s", self.spool_dir)
            replayed = 0
        self.store_up = True
        self._down_logged = False
        if was_down or replayed:
            logger.info("prediction store %s is up; replayed %d spooled records", safe_url(self.stores.url), replayed)

    def write_counts(self) -> None:
        """Failed requests to the rollups, drops to `log_drops` (metric `log_dropped`); they
        wait in memory while the store is down."""
        if self.store_up:
            self.counts.write_to(self.stores.get())

    def close(self) -> None:
        self.spool.close()
        if not self.owned:
            return  # the process's handle: its owner closes it
        try:
            self.stores.close()
        except StoreError:
            logger.exception("closing the prediction store failed")

    def _write(self, groups: list[LogColumns], *, replay: bool = False, pause: Callable[[], None] | None = None) -> int:
        """Write a batch, refused records kept aside (store/refusals.py); how many were written."""
        store = self.stores.get()
        return write_finding_refused(
            lambda part: store.write_columns(part, replay=replay, pause=pause), groups, self._reject
        )

    def _reject(self, entries: Sequence[LogEntry], exc: Exception) -> None:
        try:
            path = self.spool.reject(refused_lines(entries))
        except OSError:
            logger.exception("cannot keep %d rejected records; they are dropped", len(entries))
            self.counts.dropped(drops_by_minute(columns_of(entries)))
            return
        logger.error("the store refused %d prediction record(s): %s; kept in %s", len(entries), exc, path)
        self.counts.add("rejected", len(entries))

    def _replay_chunk(self, records: list[PredictionRecord]) -> None:
        self.counts.add("replayed", self._write(columns_of_records(records, "surrogateescape"), replay=True))

    def _mark_down(self, exc: StoreError) -> None:
        if not self._down_logged:
            self._down_logged = True
            # Unavailable is expected now and then; any other StoreError needs a person.
            level = logging.WARNING if isinstance(exc, StoreUnavailable) else logging.ERROR
            logger.log(
                level,
                "prediction store unavailable, spooling to %s and retrying every %s s: %s",
                self.spool_dir,
                self.retry_interval_s,
                exc,
            )
        else:
            logger.debug("prediction store still unavailable: %s", exc)
        self.store_up = False
        self._next_retry = time.monotonic() + self.retry_interval_s

    def _dropped_total(self) -> int:
        return self.counts.snapshot()["dropped"]
