"""One SQLite connection's plumbing: its transactions, the executor the shared SQL runs
through, and what an error of the sqlite3 module means for the caller (not now, or never)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from shipway.errors import StoreError, StoreUnavailable

__all__ = ["SQLiteExecutor", "sqlite_error", "transaction"]

# Primary result codes that mean "not now" rather than "never": locked by another
# writer for longer than the busy timeout, disk full, file or folder not reachable.
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


def sqlite_error(exc: sqlite3.Error, action: str, url: str, busy_timeout_s: float) -> StoreError:
    """`exc` as shipway's error: StoreUnavailable for a store that may answer later (locked,
    full, unreachable), else StoreError."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _UNAVAILABLE_CODES:
        return StoreUnavailable(
            f"cannot {action} the SQLite store {url}: {exc}; check that the "
            "folder is writable and the disk not full (another process holding a "
            f"write lock longer than {busy_timeout_s} s also causes this)"
        )
    return StoreError(f"the SQLite store {url} failed to {action}: {exc}")


class SQLiteExecutor:
    """The `Executor` (store/base.py) over one connection, inside a transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, params).fetchall()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (a failed COMMIT too)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
