"""The prediction log's upkeep: the Parquet export and the store's retention, by one process at a time.

It runs inside `shipway serve` (a background job of every worker, with `export.in_serve` or
`log.retention_days`) and as `shipway export --follow`. Whoever runs it, a lock decides who
works: a file lock in the export folder (flock, freed by the kernel when its holder dies)
and, on PostgreSQL, a session advisory lock on a connection of its own, for replicas on
other machines that share the folder. The holder keeps both between turns, so one process
exports for as long as it lives; the others try again at each turn and take over when it is
gone. The export's own commit protocol (store/export.py) keeps every entry in exactly one
file even if a holder dies mid-run.

It works on the store handle of its process (store/provider.py), the one the project's rules,
log and jobs share: the export's scans read over connections of their own (`Store.iter_log`),
so the handle is held only for short calls. Only the PostgreSQL advisory lock has a connection
of its own, since a session holds it.

Cheap to build and safe to build before a fork: the files and the locks are opened by the
first turn, in the process that runs it (the provider opens the store there, after a fork).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.errors import StoreUnavailable
from shipway.store.export import Exporter, ExportResult
from shipway.store.log_retention import RetentionResult, retain_log
from shipway.store.typed_columns import LogSchema

if TYPE_CHECKING:
    from shipway.store.base import Store
    from shipway.store.provider import StoreProvider

__all__ = ["LOCK_FILE", "Upkeep", "UpkeepResult"]

log = logging.getLogger("shipway.export")

LOCK_FILE = "_lock"
# Any constant works, as long as every shipway uses the same one (not the migrations' or partitions').
_ADVISORY_KEY = 0x5B1F_7A9
# Retention looks at the store at most this often: its cutoff moves once a day.
_RETAIN_EVERY_S = 600.0


@dataclass(slots=True)
class UpkeepResult:
    """One turn: whether this process held the lock, and what it exported and removed."""

    leader: bool
    export: ExportResult | None = None
    retention: RetentionResult | None = None


class Upkeep:
    """One turn per call: take (or keep) the lock, export what is new, apply the store's retention.

    `stores` is the process's store provider, whose handle it uses and never closes (its owner
    does). `export_dir` None: no export, retention only (the lock file then lives in `lock_dir`).
    """

    def __init__(
        self,
        stores: StoreProvider,
        schema: LogSchema,
        *,
        export_dir: Path | None,
        lock_dir: Path,
        retention_days: int = 0,
        archive_dir: Path | None = None,
        export_retention_days: int = 0,
        export_archive_dir: Path | None = None,
        batch_rows: int = 500_000,
    ) -> None:
        self.stores = stores
        self.schema = schema
        self.export_dir = export_dir
        self.lock_dir = lock_dir
        self.retention_days = retention_days
        self.archive_dir = archive_dir
        self.export_retention_days = export_retention_days
        self.export_archive_dir = export_archive_dir
        self.batch_rows = batch_rows
        self.stopping = threading.Event()  # set by stop(): a run under way ends between batches
        self._pid = 0
        self._exporter: Exporter | None = None
        self._lock_fd: int | None = None
        self._pg_lock: Any = None  # the PostgreSQL connection holding the advisory lock
        self._pg_held = False
        self._leading = False
        self._retained_at = -_RETAIN_EVERY_S

    def __call__(self) -> UpkeepResult:
        if self._pid != os.getpid():  # first turn in this process (or a forked copy's)
            self._forget()
            self._pid = os.getpid()
        if not self._hold():
            self._leading = False
            return UpkeepResult(False)
        if not self._leading:
            # Another process may have exported (and crashed) since this one last did: a fresh
            # Exporter looks for the files it left before it writes (store/export.py).
            self._exporter = None
            self._leading = True
        store = self._open()
        result = UpkeepResult(True)
        if self._exporter is not None and not self.stopping.is_set():
            result.export = self._exporter.run(stop=self.stopping)
        now = time.monotonic()
        if self.retention_days > 0 and now - self._retained_at >= _RETAIN_EVERY_S and not self.stopping.is_set():
            result.retention = retain_log(
                store, self.retention_days, time.time(), archive_dir=self.archive_dir, schema=self.schema
            )
            self._retained_at = now
        return result

    def follow(self, interval_s: float, stop: threading.Event, report: Callable[[UpkeepResult], None]) -> None:
        """Take a turn every `interval_s` seconds until `stop` is set; `report` each turn's result."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                report(self())
            except StoreUnavailable as exc:  # the next turn picks up where this one stopped
                log.warning("export: %s; trying again in %s s", exc, interval_s)
            stop.wait(max(0.0, interval_s - (time.monotonic() - started)))

    def stop(self) -> None:
        """Ask a turn under way to end at its next batch; `close()` then."""
        self.stopping.set()

    def close(self) -> None:
        """Release the locks (the store is the provider's, closed by its owner)."""
        if self._pid == os.getpid():
            if self._pg_lock is not None:
                self._release_advisory()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
        self._forget()

    def _forget(self) -> None:
        # What a parent opened is not ours to close after a fork: the child only drops it.
        self._exporter = self._pg_lock = self._lock_fd = None
        self._pid, self._pg_held, self._leading = 0, False, False

    def _open(self) -> Store:
        store = self.stores.get()  # StoreUnavailable while it is down: the next turn tries again
        if self.export_dir is not None and (self._exporter is None or self._exporter.store is not store):
            # First turn, or the provider's handle was closed and opened again: an Exporter on it.
            self._exporter = Exporter(
                store,
                self.export_dir,
                self.schema,
                batch_rows=self.batch_rows,
                retention_days=self.export_retention_days,
                archive_dir=self.export_archive_dir,
            )
        return store

    def _hold(self) -> bool:
        """Take or keep the file lock and, on PostgreSQL, the advisory lock; False while another holds one."""
        if self._lock_fd is None:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._lock_fd = fd
        if not self.stores.url.startswith(("postgresql:", "postgres:")):
            return True
        return self._hold_advisory()

    def _release_advisory(self) -> None:
        # Unlocked before closing: the server frees a closed session's locks only once its
        # backend has gone, which may be after another process's next try.
        import psycopg

        try:
            if self._pg_held and not self._pg_lock.closed:
                self._pg_lock.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_KEY,))
        except psycopg.Error:
            pass  # a lost session has lost its lock already
        self._pg_lock.close()

    def _hold_advisory(self) -> bool:
        import psycopg

        conn = self._pg_lock
        try:
            if conn is None or conn.closed or conn.broken:
                conn = self._pg_lock = psycopg.connect(self.stores.url, autocommit=True, connect_timeout=5)
                self._pg_held = False  # a lost session lost its lock with it
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_ADVISORY_KEY,)).fetchone()
            held = bool(row and row[0])
            if held and self._pg_held:  # taken again by the same session: keep the count at one
                conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_KEY,))
            self._pg_held = held
            return held
        except psycopg.Error as exc:
            if self._pg_lock is not None:
                self._release_advisory()
                self._pg_lock = None
            raise StoreUnavailable(f"cannot take the export's lock in the PostgreSQL store: {exc}") from exc
