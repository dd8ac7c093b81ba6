"""The embedded store: one SQLite file that several worker processes share."""

from __future__ import annotations

import heapq
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from shipway.core.collector import collector_paused
from shipway.errors import StoreError, StoreUnavailable
from shipway.store import segments
from shipway.store.base import (
    COLUMNS,
    Executor,
    Store,
    check_schema_version,
    record_from_row,
    where_clause,
)
from shipway.store.partitions import Partition
from shipway.store.records import Context, LogColumns, PredictionRecord, RulesEvent, columns_of, entry_of
from shipway.store.rollups import fold, write_rollups
from shipway.store.segments import decode, encode, merge_by_ts
from shipway.store.sqlite_connection import SQLiteExecutor, sqlite_error, transaction
from shipway.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["SQLiteStore"]

T = TypeVar("T")

SCHEME = "sqlite"
URL_EXAMPLE = "sqlite:///shipway.db (relative to the project) or sqlite:////var/lib/shipway.db"
MEMORY = ":memory:"


_INSERT_SEGMENT = (
    "INSERT INTO prediction_segments (context_id, ts_min, ts_max, n, body) VALUES (?, ?, ?, ?, CAST(? AS TEXT))"
)
_SEGMENTS = (
    "SELECT s.id, s.ts_min, CAST(s.body AS BLOB), c.service, c.model_version, c.rules_version, "
    "c.dataset_version, c.run_id, c.mode FROM prediction_segments s JOIN contexts c ON c.id = s.context_id"
)
_CONTEXT_FIND = (
    "SELECT id FROM contexts WHERE service IS ? AND model_version IS ? AND rules_version IS ? "
    "AND dataset_version IS ? AND run_id IS ? AND mode IS ?"
)
_CONTEXT_ADD = (
    "INSERT INTO contexts (service, model_version, rules_version, dataset_version, run_id, mode) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# The rows schema versions before 4 wrote, whole.
_LEGACY = (
    "SELECT p.id, p.request_id, p.ts, c.service, c.model_version, p.latency_ms, p.inputs, p.outputs, "
    "c.rules_version, c.dataset_version, c.run_id, p.status, p.decision, p.shadow, c.mode "
    "FROM prediction_rows p JOIN contexts c ON c.id = p.context_id"
)
_SELECT = "SELECT " + ", ".join(
    f"CAST({c} AS BLOB)" if c in ("inputs", "outputs", "decision", "shadow") else c for c in COLUMNS
)


class SQLiteStore(Store):
    """A store in one SQLite file, in WAL mode so readers never block the writer.

    Several processes may write the same file: each transaction waits up to
    `busy_timeout_s` for the others before giving up with StoreUnavailable.
    """

    kind = "SQLite"
    placeholder = "?"
    select_sql = _SELECT
    sql_floor = "CAST({} AS INTEGER)"  # truncation is floor for the non-negative numbers it gets

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path if str(path) == MEMORY else Path(path)
        self.url = f"sqlite:///{path}"
        self._busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._contexts: dict[Context, int] = {}
        # One connection serves every thread; the lock keeps transactions apart.
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, base_dir: Path | None = None) -> SQLiteStore:
        """Parse `sqlite:///relative.db` (against base_dir) or `sqlite:////absolute.db`."""
        prefix = f"{SCHEME}:///"
        if not url.startswith(prefix) or url == prefix:
            raise StoreError(
                f"bad SQLite store URL {url!r}: expected sqlite:/// followed by a path, for example {URL_EXAMPLE}"
            )
        raw = url[len(prefix) :]
        if raw == MEMORY:
            return cls(MEMORY)
        path = Path(raw)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return cls(path)

    def open(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            if isinstance(self.path, Path):
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreUnavailable(
                        f"cannot create the folder {str(self.path.parent)!r} for the SQLite "
                        f"store {self.url}: {exc}; check that the path is a writable folder"
                    ) from exc
            conn: sqlite3.Connection | None = None
            try:
                # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer
                # takes the lock up front and waits for it instead of failing mid-way.
                conn = sqlite3.connect(
                    str(self.path),
                    timeout=self._busy_timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
                # Before WAL mode, which fixes the page size of a new file (an existing one keeps
                # its own). A flush writes one segment of hundreds of kilobytes: with 16 KiB pages
                # SQLite commits and checkpoints it in about 40% less CPU time than with 4 KiB pages.
                conn.execute("PRAGMA page_size=16384")
                conn.execute("PRAGMA journal_mode=WAL")
                # In WAL mode NORMAL survives a process crash; only a power cut can
                # lose the last transactions, a fair price for a prediction log.
                conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate(conn)
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                raise self._error(exc, "open") from exc
            except BaseException:
                if conn is not None:
                    conn.close()
                raise
            self._conn = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at REAL NOT NULL)"
            )
            found = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            current = int(found.fetchone()[0])
            check_schema_version(current, SCHEMA_VERSION, self.url)
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._contexts.clear()

    def write_columns(
        self, groups: Sequence[LogColumns], *, replay: bool = False, pause: Callable[[], None] | None = None
    ) -> None:
        groups = [g for g in groups if len(g)]
        if not groups:
            return
        # Encoded and folded before the transaction; a replay does both only for what no earlier
        # attempt stored.
        bodies = [None] * len(groups) if replay else [self._encode(g) for g in groups]
        folded = None if replay else fold(groups)
        if pause is not None:
            pause()
        with self._lock:
            conn = self._connection()
            try:
                with transaction(conn):
                    written: list[LogColumns] = []
                    for group, body in zip(groups, bodies, strict=True):
                        if replay:
                            fresh = self._not_stored(conn, group)
                            if fresh is None:
                                continue
                            group, body = fresh, self._encode(fresh)
                        times = group.times
                        conn.execute(
                            _INSERT_SEGMENT,
                            (self._context_id(conn, group.context), min(times), max(times), len(group), body),
                        )
                        written.append(group)
                    write_rollups(SQLiteExecutor(conn), written, folded)
            except (sqlite3.Error, StoreError) as exc:
                self._contexts.clear()  # a rolled-back transaction may have added one
                if isinstance(exc, StoreError):
                    raise
                raise self._error(exc, "write to") from exc

    def _encode(self, group: LogColumns) -> bytes:
        try:
            return encode(group)
        except orjson.JSONEncodeError as exc:
            raise self._not_utf8(exc) from exc

    def _not_stored(self, conn: sqlite3.Connection, group: LogColumns) -> LogColumns | None:
        """The entries of a replayed group that no earlier attempt stored (same request id and ts),
        None if there are none."""
        low = min(group.times)
        high = max(group.times)
        stored: set[tuple[str, float]] = set()
        for body, service, model, rules, dataset, run, mode in conn.execute(
            "SELECT CAST(s.body AS BLOB), c.service, c.model_version, c.rules_version, c.dataset_version, c.run_id, "
            "c.mode "
            "FROM prediction_segments s JOIN contexts c ON c.id = s.context_id WHERE s.ts_min <= ? AND s.ts_max >= ?",
            (high, low),
        ):
            stored.update((r.request_id, r.ts) for r in decode(body, (service, model, rules, dataset, run, mode)))
        stored.update(
            conn.execute("SELECT request_id, ts FROM prediction_rows WHERE ts BETWEEN ? AND ?", (low, high)).fetchall()
        )
        kept = [e for e in group.entries() if (e[1], e[2]) not in stored]
        return columns_of(kept)[0] if kept else None

    def _insert_event(self, table: str, event: RulesEvent) -> int:
        sql, params = self._rules_event_insert(table, event)
        with self._lock:
            conn = self._connection()
            try:
                with transaction(conn):
                    return int(conn.execute(sql, params).lastrowid or 0)
            except sqlite3.Error as exc:
                raise self._error(exc, "write to") from exc

    def _context_id(self, conn: sqlite3.Connection, context: Context) -> int:
        found = self._contexts.get(context)
        if found is None:
            row = conn.execute(_CONTEXT_FIND, context).fetchone()
            found = int(row[0]) if row else int(conn.execute(_CONTEXT_ADD, context).lastrowid or 0)
            self._contexts[context] = found
        return found

    def iter_predictions(
        self,
        *,
        service: str | None = None,
        since: float | None = None,
        until: float | None = None,
        chunk: int = 10_000,
    ) -> Iterator[PredictionRecord]:
        # A connection of its own: a long scan must not hold the writer's lock
        # (an in-memory database has only the one connection).
        own = str(self.path) != MEMORY
        conn = sqlite3.connect(str(self.path), timeout=self._busy_timeout_s) if own else self._connection()
        try:
            yield from heapq.merge(
                self._legacy_rows(conn, service, since, until, chunk),
                merge_by_ts(self._segments(conn, service, since, until)),
                key=_ts,
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "read from") from exc
        finally:
            if own:
                conn.close()

    def _legacy_rows(
        self, conn: sqlite3.Connection, service: str | None, since: float | None, until: float | None, chunk: int
    ) -> Iterator[PredictionRecord]:
        """What schema versions before 4 logged, one row per prediction."""
        where, params = where_clause(service, since, until, "?")
        select = _SELECT + " FROM (" + _LEGACY + ")"
        cursor = conn.execute(f"{select}{where} ORDER BY ts, id", params)
        while rows := cursor.fetchmany(chunk):
            yield from map(record_from_row, rows)

    def _segments(
        self, conn: sqlite3.Connection, service: str | None, since: float | None, until: float | None
    ) -> Iterator[tuple[float, list[PredictionRecord]]]:
        where, params = _segment_filter([], [], service, since, until)
        for _, ts_min, body, *context in conn.execute(f"{_SEGMENTS}{where} ORDER BY s.ts_min, s.id", params):
            yield ts_min, decode(body, tuple(context), since, until)  # type: ignore[arg-type]

    def log_position(self) -> int:
        # Writes are serialised (BEGIN IMMEDIATE) and a segment's id is one more than the
        # largest at its insert, so ids commit in order: none below the newest can still come.
        return int(self._query("SELECT COALESCE(MAX(id), 0) FROM prediction_segments", [])[0][0])

    def iter_log(
        self,
        after: int,
        upto: int | None = None,
        *,
        service: str | None = None,
        since: float | None = None,
        until: float | None = None,
        chunk: int = 50_000,
    ) -> Iterator[tuple[int, LogColumns]]:
        own = str(self.path) != MEMORY
        conn = sqlite3.connect(str(self.path), timeout=self._busy_timeout_s) if own else self._connection()
        try:
            if after < 0:
                select = _SELECT + " FROM (" + _LEGACY + ")"
                where, params = where_clause(service, since, until, "?")
                cursor = conn.execute(f"{select}{where} ORDER BY id", params)
                while rows := cursor.fetchmany(50_000):
                    for group in columns_of(entry_of(record_from_row(row), "replace") for row in rows):
                        yield 0, group
            ids = ["s.id > ?"] + ([] if upto is None else ["s.id <= ?"])
            where, params = _segment_filter(
                ids, [max(after, 0)] + ([] if upto is None else [upto]), service, since, until
            )
            low = -float("inf") if since is None else since
            high = float("inf") if until is None else until
            bounded = since is not None or until is not None
            for sid, _, body, *context in conn.execute(f"{_SEGMENTS}{where} ORDER BY s.id", params):
                with collector_paused():  # a list per entry, none in a cycle
                    rows = orjson.loads(body)
                    rows = [row for row in rows if low <= row[1] < high] if bounded else rows
                    part = LogColumns(tuple(context), *zip(*rows, strict=True)) if rows else None  # type: ignore[arg-type]
                if part is not None:
                    yield sid, part
        except sqlite3.Error as exc:
            raise self._error(exc, "read from") from exc
        finally:
            if own:
                conn.close()

    def expired_log(self, cutoff: float) -> list[Partition]:
        # One table, no partitions: what is older than the cutoff (a day's start) is one part.
        low = self._transact(segments.oldest)
        name = "before " + time.strftime("%Y-%m-%d", time.gmtime(cutoff))
        return [] if low is None or low >= cutoff else [Partition(name, float("-inf"), cutoff)]

    def drop_log(self, part: Partition) -> None:
        self._transact(lambda run: segments.trim(run, part.until))

    def count_predictions(self, service: str | None = None) -> int:
        where, params = ("", []) if service is None else (" WHERE c.service = ?", [service])
        segments = self._query(
            f"SELECT COALESCE(SUM(s.n), 0) FROM prediction_segments s JOIN contexts c ON c.id = s.context_id{where}",
            params,
        )
        rows = self._query(
            f"SELECT COUNT(*) FROM prediction_rows p JOIN contexts c ON c.id = p.context_id{where}", params
        )
        return int(segments[0][0]) + int(rows[0][0])

    def _find_predictions(self, request_ids: Sequence[str]) -> dict[str, PredictionRecord]:
        """The newest logged prediction of each id (for joining feedback); each segment is read once."""
        found: dict[str, PredictionRecord] = {}

        def keep(r: PredictionRecord) -> None:
            if r.request_id not in found or found[r.request_id].ts < r.ts:
                found[r.request_id] = r

        with self._lock:
            conn = self._connection()
            try:
                with transaction(conn):
                    self._index_requests(conn)
                segments: dict[int, set[str]] = {}
                for start in range(0, len(request_ids), 500):
                    part = list(request_ids[start : start + 500])
                    marks = ", ".join("?" * len(part))
                    sql = f"SELECT request_id, segment_id FROM request_index WHERE request_id IN ({marks})"
                    for request_id, segment_id in conn.execute(sql, part):
                        segments.setdefault(segment_id, set()).add(request_id)
                    legacy = f"{_SELECT} FROM ({_LEGACY}) WHERE request_id IN ({marks})"
                    for row in conn.execute(legacy, part):
                        keep(record_from_row(row))
                for segment_id in sorted(segments):
                    row = conn.execute(f"{_SEGMENTS} WHERE s.id = ?", (segment_id,)).fetchone()
                    wanted = segments[segment_id]
                    for r in decode(row[2], tuple(row[3:])):  # type: ignore[arg-type]
                        if r.request_id in wanted:
                            keep(r)
            except sqlite3.Error as exc:
                raise self._error(exc, "read from") from exc
        return found

    def _index_requests(self, conn: sqlite3.Connection) -> None:
        """Add the request ids of segments written since the last call to request_index."""
        last = int(conn.execute("SELECT last_segment FROM request_index_state").fetchone()[0])
        newest = last
        for sid, body in conn.execute(
            "SELECT id, CAST(body AS BLOB) FROM prediction_segments WHERE id > ? ORDER BY id", (last,)
        ).fetchall():
            ids = {row[0] for row in orjson.loads(body)}
            conn.executemany("INSERT OR IGNORE INTO request_index VALUES (?, ?)", [(i, sid) for i in ids])
            newest = sid
        if newest != last:
            conn.execute("UPDATE request_index_state SET last_segment = ?", (newest,))

    def _transact(self, work: Callable[[Executor], T]) -> T:
        with self._lock:
            conn = self._connection()
            try:
                with transaction(conn):
                    return work(SQLiteExecutor(conn))
            except sqlite3.Error as exc:
                raise self._error(exc, "write to") from exc

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc, "read from") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the SQLite store {self.url} is not open; call open() first")
        return self._conn

    def _error(self, exc: sqlite3.Error, action: str) -> StoreError:
        return sqlite_error(exc, action, self.url, self._busy_timeout_s)


def _segment_filter(
    conditions: list[str], params: list[Any], service: str | None, since: float | None, until: float | None
) -> tuple[str, list[Any]]:
    """The WHERE clause over segments (`s`) and contexts (`c`): `conditions`, and the service and
    the segments that can hold entries with `since <= ts < until`."""
    for sql, value in (("c.service = ?", service), ("s.ts_max >= ?", since), ("s.ts_min < ?", until)):
        if value is not None:
            conditions.append(sql)
            params.append(value)
    return (" WHERE " + " AND ".join(conditions)) if conditions else "", params


def _ts(r: PredictionRecord) -> float:
    return r.ts
