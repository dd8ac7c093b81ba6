"""The shared store: PostgreSQL through psycopg 3, for several replicas or machines."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from shipway.core.collector import collector_paused
from shipway.errors import StoreError, StoreUnavailable
from shipway.store import partitions, pg_text
from shipway.store.annotations import annotation_tables
from shipway.store.base import (
    COLUMNS,
    Executor,
    Store,
    check_schema_version,
    record_from_row,
    safe_url,
    where_clause,
)
from shipway.store.candidates import candidate_tables
from shipway.store.outcome_rollups import outcome_tables, rank_backfill
from shipway.store.records import LogColumns, PredictionRecord, RulesEvent, columns_of, entries_of_columns
from shipway.store.registry import registry_tables
from shipway.store.rollups import write_rollups
from shipway.store.run_tables import run_tables
from shipway.store.tables import LOG_DROPS, hourly_backfill, shared_tables

__all__ = ["PostgresStore"]

T = TypeVar("T")

SCHEMES = ("postgresql", "postgres")
URL_EXAMPLE = "postgresql://user:password@db.example.com:5432/shipway"


def _history_table(name: str) -> str:
    """The rules and model histories share one shape: an append-only event log per service."""
    return (
        f"CREATE TABLE {name} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, service TEXT NOT NULL, version TEXT NOT NULL, "
        f"action TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, actor TEXT, options JSONB NOT NULL, source TEXT NOT NULL)"
    )


# Each entry brings the schema from the previous version to this one; append only.
_MIGRATIONS: list[tuple[int, tuple[str, ...]]] = [
    (
        1,
        (
            # ts stays a float of unix seconds so that records round-trip exactly.
            """CREATE TABLE predictions (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                request_id TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                service TEXT NOT NULL,
                model_version TEXT NOT NULL,
                latency_ms DOUBLE PRECISION NOT NULL,
                inputs JSONB NOT NULL,
                outputs JSONB NOT NULL,
                rules_version TEXT,
                dataset_version TEXT,
                run_id TEXT,
                status INTEGER NOT NULL,
                UNIQUE (request_id, ts)
            )""",
            "CREATE INDEX predictions_service_ts ON predictions (service, ts)",
            "CREATE INDEX predictions_ts ON predictions (ts)",
        ),
    ),
    (
        2,
        (
            "ALTER TABLE predictions ADD COLUMN decision JSONB, ADD COLUMN shadow JSONB",
            _history_table("rules_history"),
            "CREATE INDEX rules_history_service ON rules_history (service, id)",
        ),
    ),
    (
        3,
        (
            _history_table("model_history"),
            "CREATE INDEX model_history_service ON model_history (service, id)",
        ),
    ),
    (
        4,
        (
            *shared_tables(real="DOUBLE PRECISION", serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
            # Rollups of what older versions logged, so the metrics see it too.
            """INSERT INTO prediction_counts
                SELECT floor(ts / 60)::bigint, service, model_version, COALESCE(rules_version, ''), status,
                       COALESCE(decision::text, ''), COUNT(*), SUM(latency_ms)
                FROM predictions GROUP BY 1, 2, 3, 4, 5, 6""",
            """INSERT INTO prediction_latency
                SELECT floor(ts / 60)::bigint, service, model_version, COALESCE(rules_version, ''),
                       CASE WHEN latency_ms <= 0.001 THEN 0 ELSE 1 + trunc(ln(latency_ms / 0.001) / ln(1.1))::int END,
                       COUNT(*)
                FROM predictions GROUP BY 1, 2, 3, 4, 5""",
            *hourly_backfill(),
        ),
    ),
    (5, (LOG_DROPS,)),
    # Datasets, tasks and tracked runs (store/run_tables.py).
    (6, run_tables(real="DOUBLE PRECISION", serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")),
    # Rollups for score and ranked outputs (store/outcome_rollups.py).
    (7, (*outcome_tables("DOUBLE PRECISION"), rank_backfill("floor(pred_ts / 86400)::bigint"))),
    # The model registry (store/registry.py).
    (8, registry_tables(real="DOUBLE PRECISION", serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")),
    # The service mode that answered (on, shadow, off).
    (9, ("ALTER TABLE predictions ADD COLUMN mode TEXT",)),
    # The model candidate of each service (store/candidates.py); written to apply on top of 9.
    (10, candidate_tables(real="DOUBLE PRECISION", serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")),
    # The log partitioned by day (store/partitions.py).
    (11, partitions.MIGRATION),
    # Timeline annotations (store/annotations.py).
    (12, annotation_tables(real="DOUBLE PRECISION", serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")),
]
SCHEMA_VERSION = _MIGRATIONS[-1][0]

# Any constant works, as long as every shipway uses the same one: it serialises
# migrations when several replicas start at once.
_MIGRATION_LOCK_KEY = 0x5B1F_7A7

# Batches are COPYed into a session's temporary table, then moved with
# INSERT ... SELECT: COPY is about twice as fast as executemany, and only INSERT
# can skip rows already stored (which makes spool replays idempotent).
_INCOMING = "shipway_predictions_in"
_CREATE_INCOMING = f"""CREATE TEMPORARY TABLE IF NOT EXISTS {_INCOMING} (
    request_id TEXT, ts DOUBLE PRECISION, service TEXT, model_version TEXT,
    latency_ms DOUBLE PRECISION, inputs JSONB, outputs JSONB, rules_version TEXT,
    dataset_version TEXT, run_id TEXT, status INTEGER, decision JSONB, shadow JSONB, mode TEXT
) ON COMMIT DELETE ROWS"""
_COPY = f"COPY {_INCOMING} ({', '.join(COLUMNS)}) FROM STDIN"
_MOVE = (
    f"INSERT INTO predictions ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM {_INCOMING} "
    "ON CONFLICT (request_id, ts) DO NOTHING"
)
# The ids as bytea: the common case only counts them, and psycopg's bytea loader is C code
# where text now goes through pg_text's unescaping loader.
_MOVE_RETURNING = _MOVE + " RETURNING request_id::bytea, ts"
_SELECT = "SELECT " + ", ".join(COLUMNS)
# The log in write order for the export: the id, then COLUMNS with the documents as text.
_LOG_SELECT = "id, " + ", ".join(
    f"{c}::text" if c in ("inputs", "outputs", "decision", "shadow") else c for c in COLUMNS
)
_LOG_TYPES = ["int8", "text", "float8", "text", "text", "float8", *["text"] * 5, "int4", *["text"] * 3]

# Applied unless the URL sets them: without them a server that vanishes without
# closing the socket would hang the caller for minutes instead of failing fast.
_CONNECT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


class PostgresStore(Store):
    """A store in a PostgreSQL database, reached through a `postgresql://` URL.

    After a lost connection the call that noticed raises StoreUnavailable and the
    next call connects again. `options=-csearch_path=...` in the URL selects a
    schema other than `public`.
    """

    kind = "PostgreSQL"
    placeholder = "%s"
    select_sql = _SELECT
    sql_floor = "floor({})::bigint"

    def __init__(self, url: str) -> None:
        self.url = safe_url(url)
        self._dsn = url
        self._conn: psycopg.Connection[Any] | None = None
        self._opened = False
        self._days: set[int] = set()  # days the log has a partition for (store/partitions.py)
        # psycopg serialises calls on a connection, but reconnecting must not race.
        self._lock = threading.Lock()

    def open(self) -> None:
        with self._lock:
            if self._opened and self._conn is not None and not self._conn.closed:
                return
            self._conn = self._connect()
            self._opened = True

    def close(self) -> None:
        with self._lock:
            self._opened = False
            self._discard()

    def write_columns(
        self, groups: Sequence[LogColumns], *, replay: bool = False, pause: Callable[[], None] | None = None
    ) -> None:
        # A lost COMMIT acknowledgement is possible over a network: always skip duplicates.
        entries = entries_of_columns(groups)
        if not entries:
            return
        rows = pg_text.copy_rows(groups)  # what PostgreSQL refuses, encoded (store/pg_text.py)
        if pause is not None:
            pause()
        days = partitions.days_of(t for g in groups if len(g) for t in (min(g.times), max(g.times)))
        days.add(max(days, default=int(time.time() // partitions.DAY)) + 1)  # the next day's, ahead of it
        with self._lock:
            conn = self._connection()
            try:
                if not days <= self._days:  # a day's first write: its partition, in a transaction of its own
                    with conn.transaction(), conn.cursor() as cur:
                        self._days |= partitions.ensure(_Executor(cur), days)
                with conn.transaction(), conn.cursor() as cur:
                    # In the transaction, not once per connection: behind a pooler in
                    # transaction mode each transaction may reach another session.
                    cur.execute(_CREATE_INCOMING)
                    with cur.copy(_COPY) as copy:
                        copy.set_types(pg_text.COPY_TYPES)
                        for row in rows:
                            copy.write_row(row)
                    cur.execute(_MOVE_RETURNING)
                    # Only what was not stored before counts (a replay, a lost COMMIT acknowledgement).
                    fresh = cur.fetchall()
                    if len(fresh) < len(entries):
                        stored = {(pg_text.unescape(bytes(rid).decode()), ts) for rid, ts in fresh}
                        groups = columns_of(e for e in entries if (e[1], e[2]) in stored)
                    write_rollups(_Executor(cur), groups)
            except UnicodeEncodeError as exc:
                raise self._not_utf8(exc) from exc
            except psycopg.Error as exc:
                raise self._error(exc, "write to") from exc

    def iter_predictions(
        self,
        *,
        service: str | None = None,
        since: float | None = None,
        until: float | None = None,
        chunk: int = 10_000,
    ) -> Iterator[PredictionRecord]:
        where, params = where_clause(service, since, until, "%s")
        sql = f"{_SELECT} FROM predictions{where} ORDER BY ts, id"
        # A connection of its own with a server-side cursor: rows stream, memory stays flat.
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor(name="shipway_scan") as cur:
                cur.itersize = chunk
                cur.execute(sql, params)
                yield from map(record_from_row, cur)
        except psycopg.Error as exc:
            raise self._error(exc, "read from") from exc
        finally:
            conn.close()

    def log_position(self) -> int:
        # SHARE mode waits for every transaction inserting into predictions to end and holds
        # new ones back for the moment it takes: every id at or below the maximum is committed.
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute("SET LOCAL lock_timeout = '10s'")
                    cur.execute("LOCK TABLE predictions IN SHARE MODE")
                    row = cur.execute("SELECT COALESCE(MAX(id), 0) FROM predictions").fetchone()
            except psycopg.Error as exc:
                raise self._error(exc, "read from") from exc
        return int(row[0]) if row else 0

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
        where, params = where_clause(service, since, until, "%s")
        where = (where + " AND" if where else " WHERE") + " id > %s" + ("" if upto is None else " AND id <= %s")
        params += [after] + ([] if upto is None else [upto])
        # COPY streams the rows in text form, parsed by psycopg in C: the fastest way out.
        sql = f"COPY (SELECT {_LOG_SELECT} FROM predictions{where} ORDER BY id) TO STDOUT"
        conn = self._connect()
        try:
            with conn.cursor() as cur, cur.copy(sql, params) as copy:
                copy.set_types(_LOG_TYPES)
                rows = copy.rows()
                while part := list(itertools.islice(rows, chunk)):
                    position = part[-1][0]
                    with collector_paused():  # a tuple per entry, none in a cycle
                        entries = [
                            ((r[3], r[4], r[8], r[9], r[10], r[14]), r[1], r[2], r[5], r[11], r[6], r[7], r[12], r[13])
                            for r in part
                        ]
                        groups = columns_of(entries)  # type: ignore[arg-type]
                    for group in groups:
                        yield position, group
        except psycopg.Error as exc:
            raise self._error(exc, "read from") from exc
        finally:
            conn.close()

    def expired_log(self, cutoff: float) -> list[partitions.Partition]:
        return [p for p in partitions.partitions(lambda sql: self._query(sql, ())) if p.until <= cutoff]

    def drop_log(self, part: partitions.Partition) -> None:
        self._transact(lambda run: partitions.drop(run, part))
        self._days = set()  # a replay may bring the day back

    def _find_predictions(self, request_ids: Sequence[str]) -> dict[str, PredictionRecord]:
        """The newest logged prediction of each id (for joining feedback)."""
        rows = self._query(f"{_SELECT} FROM predictions WHERE request_id = ANY(%s) ORDER BY ts", [list(request_ids)])
        return {r.request_id: r for r in map(record_from_row, rows)}

    def _insert_event(self, table: str, event: RulesEvent) -> int:
        sql, params = self._rules_event_insert(table, event)
        sql += " RETURNING id"
        params = (*params[:5], pg_text.document_in(params[5]), *params[6:])  # options: jsonb
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(sql, params)
                    row = cur.fetchone()
            except psycopg.Error as exc:
                raise self._error(exc, "write to") from exc
        return int(row[0]) if row else 0

    def _transact(self, work: Callable[[Executor], T]) -> T:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    return work(_Executor(cur))
            except psycopg.Error as exc:
                raise self._error(exc, "write to") from exc

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall()
            except psycopg.Error as exc:
                raise self._error(exc, "read from") from exc

    def _connection(self) -> psycopg.Connection[Any]:
        """The live connection, reconnecting if the last one was lost."""
        if not self._opened:
            raise StoreError(f"the PostgreSQL store {self.url} is not open; call open() first")
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._discard()
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> psycopg.Connection[Any]:
        given = self._check_url()
        defaults = {k: v for k, v in _CONNECT_DEFAULTS.items() if k not in given}
        try:
            conn = psycopg.connect(self._dsn, autocommit=True, **defaults)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"cannot connect to the PostgreSQL store {self.url}: {str(exc).strip()}; "
                "check that the server is running and that the host, port, user, "
                "password and database in the URL are right"
            ) from exc
        except psycopg.Error as exc:
            raise self._bad_url(str(exc)) from exc
        pg_text.register(conn)
        try:
            self._migrate(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, psycopg.Error):
                raise self._error(exc, "create the schema in") from exc
            raise
        return conn

    def _check_url(self) -> dict[str, Any]:
        """The URL's parameters; StoreError if libpq could never use them."""
        try:
            given = conninfo_to_dict(self._dsn)
        except psycopg.Error as exc:
            raise self._bad_url(str(exc)) from exc
        ports = str(given.get("port", "5432"))
        if not all(p.strip().isdigit() for p in ports.split(",") if p.strip()):
            raise self._bad_url(f"the port {ports!r} is not a number")
        return given

    def _bad_url(self, reason: str) -> StoreError:
        return StoreError(
            f"bad PostgreSQL store URL {self.url}: {reason}; expected "
            f"postgresql://[user[:password]@]host[:port]/database, for example {URL_EXAMPLE}"
        )

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            check_schema_version(current, SCHEMA_VERSION, self.url)
            for version, statements in _MIGRATIONS:
                if version > current:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version VALUES (%s, %s)", (version, time.time()))

    def _discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass  # a broken connection may fail to close; it is gone either way
            self._conn = None

    def _error(self, exc: psycopg.Error, action: str) -> StoreError:
        # OperationalError covers a lost connection, a server shutting down, too many
        # connections, a full disk: all worth retrying later. InterfaceError is a
        # connection psycopg already knows is closed.
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            self._discard()
            return StoreUnavailable(
                f"cannot {action} the PostgreSQL store {self.url}: {str(exc).strip()}; the next call will reconnect"
            )
        return StoreError(f"the PostgreSQL store {self.url} failed to {action}: {str(exc).strip()}")


class _Executor:
    """Runs the shared SQL, written with `?` marks, as psycopg's `%s`."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self._cur.execute(sql.replace("?", "%s"), params)
        return self._cur.fetchall() if self._cur.description else []

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cur.executemany(sql.replace("?", "%s"), rows)
