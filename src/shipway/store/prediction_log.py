"""The prediction log: records from the request path, written in batches off it.

`add()` is all the request path pays: a sampling draw and one extend of a flat
list (store/log_buffer.py) by objects it has anyway; for a plain entry (status 200,
no decision, no shadow) just the extend, through `plain()`.
The writer, a daemon thread, takes what is buffered every `flush_interval_s` and cuts it
into slices, each decoded, redacted and written on its own, in a transaction, with pauses
between them (store/pacing.py). When the store is down the batch goes to a spool on
local disk, and the spool is replayed when the store comes back. With `writer="process"`
that thread runs in a writer process of the log's own instead (store/log_process.py):
here a thread only hands the buffer over, as it is held, every `_SHIP_S`.

When the spool fails too, records wait in memory with the new ones (store/held.py),
up to `max_buffer`; past it the oldest are dropped and counted, in the stats and in
the store's `log_drops` once it takes writes (store/log_counts.py).

Guarantee: every record appended is written, spooled, held or counted as dropped.
`close()` loses nothing (what the store did not take is spooled). A hard kill of the
process loses, with the writer thread, at most what was appended in the last flush interval
(0.5 s by default; keep it at or under 1 s) plus what the store has not taken yet of the
batch being written (its pauses last at most half a flush interval); with the writer
process, at most what was appended since the last hand-over (`_SHIP_S`), since the writer
process writes what it was sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from random import random
from typing import TYPE_CHECKING

from shipway.errors import ConfigError
from shipway.store.held import Held
from shipway.store.log_buffer import FIELDS, Flat, LogBuffer, decoded, flat_size, groups_of_flat, split_flat
from shipway.store.log_counts import COUNTERS, LogCounts, drops_by_minute
from shipway.store.log_delivery import Delivery
from shipway.store.log_process import WriterProcess, hook_reference
from shipway.store.pacing import Pacer, slices
from shipway.store.records import Context, LogColumns, PredictionRecord, context_of, records_of_columns, size
from shipway.store.redaction import Redact, redact_columns
from shipway.store.spool import Spool

if TYPE_CHECKING:  # the package imports this module; the provider imports the package
    from shipway.store.provider import StoreProvider

__all__ = ["PredictionLog"]

logger = logging.getLogger("shipway.store")

WRITERS = ("process", "thread")
# How often the buffer is handed over to the writer process: what a hard kill of the serving
# process loses at most. Each hand-over has a fixed cost on both sides (waking a thread and a
# process, about 0.2 ms of CPU each on these machines): at 0.05 s the writer process's CPU
# per entry at 1,500 entries a second was 1.7 times that at 0.1 s, and at 0.1 s the CPU per
# request of the identity service, log on against off, was 7% (docs/benchmarks.md).
_SHIP_S = 0.25
# Entries in one message of a hand-over: its marshalling, about 0.1 ms, is one stretch of the GIL.
_MESSAGE_ENTRIES = 250


class PredictionLog:
    """Asynchronous, batched writer of prediction records to a store.

    The constructor only stores its arguments: call `start()` (or use `with`),
    then `add()` (or `append()`) from the request path and `close()` on shutdown. A relative
    `spool_dir` resolves against `base_dir`, like a relative SQLite path.
    """

    def __init__(
        self,
        store_url: str | StoreProvider,
        *,
        base_dir: Path | None = None,
        flush_interval_s: float = 0.5,
        spool_dir: Path,
        sample_rate: float = 1.0,
        redact: Redact | None = None,
        max_buffer: int = 100_000,
        retry_interval_s: float = 2.0,
        writer: str = "thread",
        paced: bool = True,
    ) -> None:
        _check_number("flush_interval_s", flush_interval_s, 0.0, None, "for example 0.5")
        _check_number("sample_rate", sample_rate, 0.0, 1.0, "1.0 logs every request")
        _check_number("retry_interval_s", retry_interval_s, 0.0, None, "for example 2.0")
        if not isinstance(max_buffer, int) or max_buffer < 1:
            raise ConfigError(f"max_buffer must be a positive integer, got {max_buffer!r}")
        if writer not in WRITERS:
            raise ConfigError(f"writer must be one of {', '.join(WRITERS)}, got {writer!r} (log.writer)")
        # A URL: a handle of the log's own. A provider: the process's one handle (`shipway serve`
        # gives the project's), shared with the rest of the worker and closed by its owner.
        self.stores = store_url if not isinstance(store_url, str) else None
        self.store_url = store_url if isinstance(store_url, str) else store_url.url
        self.base_dir = base_dir
        self.flush_interval_s = flush_interval_s
        spool_dir = Path(spool_dir)
        if base_dir is not None and not spool_dir.is_absolute():
            spool_dir = base_dir / spool_dir
        self.spool_dir = spool_dir
        self.sample_rate = sample_rate
        self.redact = redact
        self.max_buffer = max_buffer
        self.retry_interval_s = retry_interval_s
        self.writer = writer
        self.paced = paced  # the writer process writes unpaced: it shares no GIL with the request path

        self._buffer = LogBuffer()
        # Wake the writer early once an interval's worth of traffic is waiting.
        self._wake_entries = max(1, min(10_000, max_buffer // 4))
        self._wake_fields = self._wake_entries * FIELDS
        self._max_fields = max_buffer * FIELDS
        self._full = False  # the buffer as plain() last found it
        self._counts = LogCounts(max_buffer)
        self._in_flight = 0
        self._held = Held(max_buffer, spool_dir)  # what neither store nor disk took
        self._delivery: Delivery | None = None  # made by start()
        self._wake = threading.Event()
        self._flush_cond = threading.Condition()
        self._flush_requested = 0
        self._flush_done = 0
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._process: WriterProcess | None = None  # with writer="process", until it falls back
        self._ship_lock = threading.Lock()

    # -- the request path -------------------------------------------------------

    def append(self, record: PredictionRecord) -> None:
        """Queue one record; never blocks, never raises, does no I/O."""
        r = record
        self.add(context_of(r), r.request_id, r.ts, r.latency_ms, r.status, r.inputs, r.outputs, r.decision, r.shadow)

    def add(
        self,
        context: Context,
        request_id: str,
        ts: float,
        latency_ms: float,
        status: int,
        inputs: bytes,
        outputs: bytes,
        decision: bytes | None,
        shadow: bytes | None,
    ) -> None:
        """Queue one prediction, its documents as JSON bytes; O(1), never blocks, never
        raises, does no I/O. The store refuses documents that are not UTF-8, with its error."""
        if self.sample_rate < 1.0 and random() >= self.sample_rate:
            self._count("sampled_out")
            return
        fields = self._buffer.fields
        if self._closed or self._full or len(fields) >= self._max_fields:
            self._dropped(Counter({(int(ts // 60), context[0]): 1}))
            return
        # One C call, in LogBuffer's order (the tuple is freed at once; see store/log_buffer.py).
        fields.extend((context, request_id, ts, latency_ms, status, inputs, outputs, decision, shadow))
        if len(fields) == self._wake_fields:
            self._wake.set()

    def plain(self, context: Context) -> Callable[[tuple[str, float, float, bytes, bytes]], None] | None:
        """The request path's way in for a plain entry (status 200, no decision, no shadow),
        or None when entries must go through `add()`: sampling, a closed log, a full buffer.

        What it gives is the `extend` of the context's list of plain entries, called with
        `(request_id, ts, latency_ms, inputs, outputs)`: one C call, where `add()` is a
        Python call with its checks. So the checks run here instead, and the caller asks
        again at least once a second and whenever its context changes; the buffer can pass
        `max_buffer` by at most what arrives in between.
        """
        if self.sample_rate < 1.0 or self._closed:
            return None
        pending = len(self._buffer)
        self._full = pending >= self.max_buffer  # add() drops too until the writer takes
        if self._full:
            return None
        if pending >= self._wake_entries:
            self._wake.set()
        return self._buffer.plain(context).extend

    def append_failure(
        self, service: str, model_version: str, rules_version: str | None, status: int, latency_ms: float
    ) -> None:
        """Count a failed request in the metrics rollups (failures are counted, not logged as records)."""
        if not self._closed:
            self._counts.failure(
                PredictionRecord(
                    "", time.time(), service, model_version, latency_ms, b"", b"", rules_version, status=status
                )
            )

    # -- life cycle --------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; a store that is down only means spooling.

        Raises StoreError for a URL no backend accepts, and does nothing if
        already started.
        """
        if self._thread is not None or self._closed:
            return
        from shipway.store import store_from_url  # the package imports this module

        store_from_url(self.store_url, self.base_dir)  # a URL no backend accepts fails here
        if self.writer == "process":
            self._process = WriterProcess(
                self._spool_orphans,
                {
                    "store_url": self.store_url,
                    "base_dir": None if self.base_dir is None else str(self.base_dir),
                    "flush_interval_s": self.flush_interval_s,
                    "spool_dir": str(self.spool_dir),
                    "redact": hook_reference(self.redact),
                    "max_buffer": self.max_buffer,
                    "retry_interval_s": self.retry_interval_s,
                    "close_timeout_s": 8.0,  # within close()'s default 10 s
                },
            )
            self._process.start()
            self._thread = threading.Thread(target=self._ship_run, name="shipway-prediction-log", daemon=True)
        else:
            self._delivery = self._make_delivery()
            self._thread = threading.Thread(target=self._run, name="shipway-prediction-log", daemon=True)
        self._thread.start()

    def _make_delivery(self) -> Delivery:
        from shipway.store.provider import StoreProvider  # the package imports this module

        stores = self.stores if self.stores is not None else StoreProvider(self.store_url, self.base_dir)
        return Delivery(
            stores, self.spool_dir, self._held, self._counts, self.retry_interval_s, owned=self.stores is None
        )

    def flush(self, timeout: float = 10.0) -> bool:
        """Write (or spool) everything appended so far; False if not done in `timeout`."""
        process = self._process
        if process is not None:
            self._ship()
            process.flush()
            if process.wait(timeout):
                return True
            if not process.failed:
                return False
            self._fall_back()  # then as with the thread
        return self.cycle(timeout) and not len(self._held)

    def cycle(self, timeout: float = 10.0) -> bool:
        """Wait until the writer thread has taken everything appended so far through a cycle
        (written, spooled, held or counted as dropped); False if not done in `timeout`."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return not self._buffer
        with self._flush_cond:
            self._flush_requested += 1
            target = self._flush_requested
        self._wake.set()
        with self._flush_cond:
            return self._flush_cond.wait_for(lambda: self._flush_done >= target, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush, spool what the store did not take, stop the thread, close the store.

        A second call does nothing. If the writer is stuck (a store call hanging
        past `timeout`), what is still buffered is spooled from this thread.
        """
        if self._closed:
            return
        self._closed = True
        if self._process is not None and self._close_process(timeout):
            return
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join(timeout)
            if thread.is_alive():
                logger.warning(
                    "prediction log writer did not finish within %s s; spooling %d buffered "
                    "records to %s from the closing thread",
                    timeout,
                    len(self._buffer),
                    self.spool_dir,
                )
        # Also catches an append that passed the closed check just before close().
        self._spool_from_here(self._buffer.take())

    def _spool_from_here(self, groups: list[LogColumns], *, drop: bool = True) -> bool:
        """Spool from this thread; False if the disk failed, and then with `drop` the records are
        counted as dropped."""
        if not groups:
            return True
        # A Spool of our own: the writer, if alive, may still use its one. Closed at once, so
        # that any process may replay the file.
        spool = Spool(self.spool_dir)
        try:
            spool.append(records_of_columns(groups))
            self._count("spooled", size(groups))
            return True
        except OSError:
            if not drop:
                return False
            logger.exception("cannot spool %d records to %s; they are dropped", size(groups), self.spool_dir)
            self._dropped(drops_by_minute(groups))
            return False
        finally:
            spool.close()

    def _spool_orphans(self, flats: list[Flat]) -> bool:
        """What a writer process that died had not acknowledged: spooled, redacted, for the next
        one to replay, which skips what the dead one stored (False: the disk failed)."""
        groups = [g for flat in flats for g in groups_of_flat(flat)]
        return self._spool_from_here(self._redacted(decoded(groups)), drop=False)

    def __enter__(self) -> PredictionLog:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def stats(self) -> dict[str, int | bool]:
        """Counters since start, plus `pending` (not yet written), `held` (the part of pending
        that neither the store nor the spool took) and `store_up`."""
        stats: dict[str, int | bool] = dict(self._counts.snapshot())
        process = self._process
        if process is not None:  # the writer process's counts, as it last reported them
            theirs = process.counts
            for name in COUNTERS:
                stats[name] += theirs[name]
            stats["pending"] = len(self._buffer) + process.pending
            stats["held"] = process.held
            stats["store_up"] = process.store_up
            return stats
        held = len(self._held)
        stats["pending"] = len(self._buffer) + self._in_flight + held
        stats["held"] = held
        stats["store_up"] = self._delivery is not None and self._delivery.store_up
        return stats

    @property
    def writer_pid(self) -> int | None:
        """The writer process's pid; None when the log is written by its thread."""
        process = self._process
        return None if process is None else process.pid

    def held_by_minute(self) -> Counter[tuple[int, str]]:
        """The records held in memory per minute of their time and service (the writer thread's)."""
        return self._held.by_minute()

    def put(self, flat: Flat, failures: list[PredictionRecord], drops: Counter[tuple[int, str]]) -> None:
        """The writer process's way in: entries another log's buffer gave (`take_flat`), failed
        requests for the rollups, and drops counted there for the store's `log_drops`."""
        if self._closed or len(self._buffer) + flat_size(flat) > self.max_buffer:
            self._dropped(drops_by_minute(groups_of_flat(flat)))
        else:
            self._buffer.put_flat(flat)
        for record in failures:
            self._counts.failure(record)
        self._counts.restore_drops(drops)  # counted where they happened, written from here

    # -- handing over to the writer process --------------------------------------

    def _ship_run(self) -> None:
        while True:
            self._wake.wait(min(_SHIP_S, self.flush_interval_s))
            self._wake.clear()
            stopping = self._stopping
            self._ship()
            process = self._process
            if process is None or process.failed:
                self._fall_back()
                return
            if stopping:
                return

    def _ship(self) -> None:
        """Hand what is buffered over to the writer process, with what waits for the store."""
        process = self._process
        if process is None:
            return
        with self._ship_lock:
            flat = self._buffer.take_flat()
            self._full = False
            if process.drops:  # held by a writer process that died
                self._dropped(process.drops)
                process.drops.clear()
            failures, drops = self._counts.take_failures(), self._counts.take_drops()
            # In small parts: the marshalling holds the GIL, and each send lets the event loop in.
            for part in split_flat(flat, _MESSAGE_ENTRIES):
                process.send(part, failures, drops)
                failures, drops = [], Counter()

    def _fall_back(self) -> None:
        """The writer process cannot run: write from a thread here, from what it did not acknowledge."""
        with self._ship_lock:
            process = self._process
            if process is None:
                return
            counts = process.counts
            for name in COUNTERS:
                self._counts.add(name, counts[name])
            for flat in process.take_unacked():
                self._buffer.put_flat(flat)  # accepted already: past any bound or close
            self._dropped(process.drops)
            self._process = None
            self._delivery = self._make_delivery()
            self._thread = threading.Thread(target=self._run, name="shipway-prediction-log", daemon=True)
            self._thread.start()

    def _close_process(self, timeout: float) -> bool:
        """Close with the writer process; False if the log fell back to its thread meanwhile,
        for close() to go on as with the thread."""
        thread = self._thread
        assert thread is not None
        self._stopping = True
        self._wake.set()
        thread.join(timeout)  # the hand-over thread: its last hand-over
        process = self._process
        if process is None or process.failed:
            self._stopping = False  # the new writer thread's stop comes from close()
            self._fall_back()
            return False
        self._ship()  # also what raced with the closed check
        left = process.close(timeout)
        self._dropped(process.drops)
        process.drops.clear()
        groups = [g for flat in left for g in groups_of_flat(flat)]
        self._spool_from_here(self._redacted(decoded(groups) + self._buffer.take()))
        return True

    # -- the writer thread --------------------------------------------------------

    def _run(self) -> None:
        delivery = self._delivery
        assert delivery is not None  # set by start() before the thread runs
        delivery.recover()
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            stopping = self._stopping
            with self._flush_cond:
                target = self._flush_requested
            try:
                self._cycle(delivery)
            except Exception:  # the thread must survive anything; what was not delivered is held
                logger.exception("prediction log writer failed; will retry")
            with self._flush_cond:
                self._flush_done = target
                self._flush_cond.notify_all()
            if stopping:
                break
        self._shutdown(delivery)

    def _cycle(self, delivery: Delivery) -> None:
        """Deliver the held records and the new batch together, oldest first, in paced slices
        (store/pacing.py): each slice is decoded and redacted on its own, then reaches the
        store, the spool or memory."""
        delivery.due()
        held = self._held.take()  # already decoded and redacted
        batch = self._buffer.take(decode=False)
        self._full = False
        self._in_flight = size(held) + size(batch)
        try:
            parts = [(part, False) for part in slices(held)] + [(part, True) for part in slices(batch)]
            # Closing: the sooner written the better, nobody waits for the GIL much longer.
            pacer = Pacer(0.0 if self._stopping or not self.paced else self.flush_interval_s / 2)
            done = 0
            ready: list[LogColumns] | None = None  # the slice in hand, decoded and redacted
            try:
                for part, fresh in parts:
                    ready = part
                    if fresh:
                        ready = None
                        ready = self._redacted(decoded(part))
                        pacer.pause()
                    delivery.deliver(ready, pacer.pause)  # it rests again once the slice is encoded
                    done += 1
                    if done < len(parts):  # the last slice written, the flush is done
                        pacer.pause()
            except Exception:  # logged by _run; the slices not delivered wait for the next cycle
                rest = parts[done + (ready is not None) :]
                kept = (ready or []) + [g for part, fresh in rest if not fresh for g in part]
                kept += self._redacted(decoded([g for part, fresh in rest if fresh for g in part]))
                self._dropped(self._held.keep(kept))
                raise
        finally:
            self._in_flight = 0
        delivery.write_counts()

    def _shutdown(self, delivery: Delivery) -> None:
        # Appends that raced with close() land here; after this, append() drops.
        held, batch = self._held.take(), self._buffer.take()
        groups = held + batch
        try:
            delivery.deliver(held + self._redacted(batch))
        except Exception:
            logger.exception("prediction log writer failed while closing; %d records dropped", size(groups))
            self._dropped(drops_by_minute(groups))
        if len(self._held):
            logger.error("prediction log closed with %d records it could not keep; dropped", len(self._held))
            self._dropped(drops_by_minute(self._held.take()))
        delivery.write_counts()
        if self._counts.unwritten_drops:
            logger.error("the store did not count %d dropped records (log_dropped)", self._counts.unwritten_drops)
        delivery.close()

    def _redacted(self, batch: list[LogColumns]) -> list[LogColumns]:
        """A fresh batch through the redact hook. The hook's own failures are caught record by
        record (store/redaction.py); if redacting fails otherwise, the batch is dropped and
        counted, since it must not be stored unredacted."""
        if not batch or self.redact is None:
            return batch
        try:
            batch, result = redact_columns(batch, self.redact)
        except Exception:
            logger.exception("redacting a batch of %d prediction records failed; they are dropped", size(batch))
            self._dropped(drops_by_minute(batch))
            return []
        self._count("redacted_out", result.dropped)
        self._count("redaction_failed", len(result.failures))
        return batch

    def _count(self, name: str, n: int = 1) -> None:
        self._counts.add(name, n)

    def _dropped(self, counts: Counter[tuple[int, str]]) -> None:
        self._counts.dropped(counts)


def _check_number(name: str, value: float, low: float, high: float | None, hint: str) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    # With an upper bound the range is closed; without one the value must exceed low.
    if ok and high is not None:
        ok = low <= value <= high
    elif ok:
        ok = value > low
    if not ok:
        valid = f"between {low} and {high}" if high is not None else f"greater than {low}"
        raise ConfigError(f"{name} must be a number {valid}, got {value!r}; {hint}")
