"""What every store backend offers, and the pieces the backends share."""

from __future__ import annotations

import abc
import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from shipway.errors import StoreError
from shipway.store import alerts, feedback, rollups
from shipway.store.annotations import AnnotationRecords
from shipway.store.candidates import CandidateRecords
from shipway.store.datasets import DatasetRecords
from shipway.store.partitions import Partition
from shipway.store.records import (
    AlertEvent,
    FeedbackOutcome,
    FeedbackRecord,
    LogColumns,
    PredictionRecord,
    RulesEvent,
    columns_of_records,
)
from shipway.store.registry import RegistryRecords
from shipway.store.runs import RunRecords

__all__ = [
    "COLUMNS",
    "RULES_COLUMNS",
    "Executor",
    "Store",
    "check_schema_version",
    "record_from_row",
    "rules_event_from_row",
    "safe_url",
]

# The order of columns in every INSERT and SELECT, so rows map to records by position.
COLUMNS: tuple[str, ...] = (
    "request_id",
    "ts",
    "service",
    "model_version",
    "latency_ms",
    "inputs",
    "outputs",
    "rules_version",
    "dataset_version",
    "run_id",
    "status",
    "decision",
    "shadow",
    "mode",
)


T = TypeVar("T")


class Executor(Protocol):
    """Runs SQL (written with `?` marks) inside one of a store's transactions."""

    def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Store(RunRecords, DatasetRecords, RegistryRecords, CandidateRecords, AnnotationRecords, abc.ABC):
    """A place to keep what shipway records, reached through a URL.

    The constructor only stores its arguments; `open()` connects and brings the
    schema up to date. A store is safe to share between threads. Use it as a
    context manager to open and close it.
    """

    kind: ClassVar[str]  # "SQLite", "PostgreSQL": for messages
    placeholder: ClassVar[str] = "?"  # the driver's parameter marker
    select_sql: ClassVar[str]  # SELECT of COLUMNS, as the backend needs to cast them
    sql_floor: ClassVar[str]  # floor() of a non-negative number as an integer, `{}` the argument

    #: The URL with any password masked, for messages and logs.
    url: str

    @abc.abstractmethod
    def open(self) -> None:
        """Connect and create or migrate the schema; a second call does nothing.

        Raises StoreUnavailable if the server or file cannot be reached now, and
        StoreError for a URL that can never work or a schema this version of
        shipway does not know.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; a closed store can be opened again."""

    def write_predictions(self, records: Sequence[PredictionRecord], *, replay: bool = False) -> None:
        """Store `records` in one transaction: all of them or none.

        With `replay=True` (spool replay, where an earlier attempt may have
        landed) a record whose `(request_id, ts)` is already stored is skipped;
        the live path does not pay for that check where a backend can tell
        a write landed (SQLite). Raises
        StoreUnavailable when the store cannot be reached, so the caller can
        spool the batch and retry; StoreError when the store refuses the data.
        """
        try:
            groups = columns_of_records(records)
        except UnicodeDecodeError as exc:
            raise self._not_utf8(exc) from exc
        self.write_columns(groups, replay=replay)

    @abc.abstractmethod
    def write_columns(
        self, groups: Sequence[LogColumns], *, replay: bool = False, pause: Callable[[], None] | None = None
    ) -> None:
        """`write_predictions` for the prediction log's entries, as columns per context.
        `pause`, if given, is called once the batch is encoded and folded into rollup rows,
        before its transaction: where the prediction log's writer rests (store/pacing.py)."""

    def _rules_event_insert(self, table: str, event: RulesEvent) -> tuple[str, tuple[Any, ...]]:
        """The INSERT of a rules (or model) event into `table`, and its parameters: what
        `rules_event_from_row` reads back, the id left to the database."""
        values = ", ".join([self.placeholder] * 7)
        sql = f"INSERT INTO {table} ({RULES_COLUMNS.removeprefix('id, ')}) VALUES ({values})"
        options = json.dumps(event.options)
        return sql, (event.service, event.version, event.action, event.ts, event.actor, options, event.source)

    def _not_utf8(self, exc: Exception) -> StoreError:
        """The error for a document the store cannot take as text."""
        return StoreError(
            f"cannot write to the {self.kind} store {self.url}: a record's inputs or outputs are "
            f"not UTF-8 JSON ({exc}); pass JSON documents encoded as UTF-8"
        )

    def write_rollups(self, records: Sequence[PredictionRecord]) -> None:
        """Count records in the metrics rollups without storing them (failed requests)."""
        groups = columns_of_records(records, "replace")
        self._transact(lambda run: rollups.write_rollups(run, groups))

    def write_drops(self, counts: Mapping[tuple[int, str], int]) -> None:
        """Count prediction records that were answered and dropped, per (minute, service)."""
        self._transact(lambda run: rollups.write_drops(run, counts))

    def read_predictions(
        self,
        *,
        service: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[PredictionRecord]:
        """Records with `since <= ts < until`, oldest first, at most `limit`."""
        check_limit(limit)
        return list(itertools.islice(self.iter_predictions(service=service, since=since, until=until), limit))

    @abc.abstractmethod
    def iter_predictions(
        self,
        *,
        service: str | None = None,
        since: float | None = None,
        until: float | None = None,
        chunk: int = 10_000,
    ) -> Iterator[PredictionRecord]:
        """Records with `since <= ts < until`, oldest first, streamed `chunk` rows at a time
        (for backtests and replays over millions of rows)."""

    # -- the log in write order, for the Parquet export (store/export.py) --

    def log_position(self) -> int:
        """The position of the newest entry of the prediction log whose write has committed,
        such that no later commit adds an entry at or below it; 0 for an empty log."""
        raise StoreError(f"the {self.kind} store {self.url} cannot be exported")

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
        """The log's entries at positions in `(after, upto]`, in position order, as columns per context.

        Each group comes with a position: once every group of that position has been
        taken, every entry at or below it has been. `after=-1` also yields what schema
        versions before 4 wrote (SQLite). `service`, `since` and `until` filter the entries;
        a position covers at most about `chunk` entries where the store can cut (PostgreSQL).
        """
        raise StoreError(f"the {self.kind} store {self.url} cannot be exported")

    # -- retention (store/log_retention.py): whole days of the log go --

    def expired_log(self, cutoff: float) -> list[Partition]:
        """The parts of the log that hold only entries older than `cutoff` (a UTC day's start):
        PostgreSQL's day partitions, SQLite's entries before it as one part."""
        raise StoreError(f"the {self.kind} store {self.url} has no retention")

    def drop_log(self, part: Partition) -> None:
        """Remove one part `expired_log` gave, in one transaction."""
        raise StoreError(f"the {self.kind} store {self.url} has no retention")

    def count_predictions(self, service: str | None = None) -> int:
        """How many records are stored, for one service or all."""
        where, params = where_clause(service, None, None, self.placeholder)
        rows = self._query(f"SELECT COUNT(*) FROM predictions{where}", params)
        return int(rows[0][0])

    # -- rules history: append-only; the newest event names the active rules --

    def record_rules(
        self,
        service: str,
        version: str,
        source: str,
        *,
        action: str = "apply",
        actor: str | None = None,
        options: dict[str, object] | None = None,
    ) -> RulesEvent:
        """Append an event to the service's rules history and return it."""
        if action not in ("apply", "rollback"):
            raise StoreError(f"rules action must be 'apply' or 'rollback', not {action!r}")
        event = RulesEvent(0, service, version, action, time.time(), actor, dict(options or {}), source)
        event.id = self._insert_event("rules_history", event)
        return event

    def rules_history(self, service: str, limit: int | None = None) -> list[RulesEvent]:
        """The service's rules events, newest first."""
        check_limit(limit)
        return self._select_events("rules_history", service, None, limit)

    def active_rules(self, service: str) -> RulesEvent | None:
        """The newest rules event of the service, or None if it never had rules."""
        events = self._select_events("rules_history", service, None, 1)
        return events[0] if events else None

    def rules_version(self, service: str, version: str) -> RulesEvent | None:
        """The newest event that carried `version`: its source, to roll back to."""
        events = self._select_events("rules_history", service, version, 1)
        return events[0] if events else None

    # -- model history: each event names an artifacts folder a service was moved to --

    def record_model(self, service: str, version: str, artifacts: str, *, actor: str | None = None) -> RulesEvent:
        """Append a model deployment (its version and artifacts folder) to the service's history."""
        event = RulesEvent(0, service, version, "deploy", time.time(), actor, {}, artifacts)
        event.id = self._insert_event("model_history", event)
        return event

    def model_history(self, service: str, limit: int | None = None) -> list[RulesEvent]:
        """The service's model deployments, newest first (`source` is the artifacts folder)."""
        check_limit(limit)
        return self._select_events("model_history", service, None, limit)

    # -- feedback: outcomes joined to their predictions by request id --

    def write_feedback(
        self,
        records: Sequence[FeedbackRecord],
        describe: feedback.Describe,
        *,
        late_after_s: float = 7 * 86400,
    ) -> FeedbackOutcome:
        """Store outcomes and join them to their predictions; see `store.feedback`."""
        return feedback.write_feedback(self, records, describe, late_after_s=late_after_s)

    def find_prediction(self, request_id: str) -> PredictionRecord | None:
        """The newest logged prediction with this request id, or None."""
        return self._find_predictions([request_id]).get(request_id)

    def resolve_feedback(self, describe: feedback.Describe) -> int:
        """Join earlier feedback whose prediction has been logged since; how many joined."""
        return feedback.resolve_pending(self, describe)

    # -- alerts: deduplicated state changes --

    def alert_transition(self, service: str, key: str, firing: bool, ts: float, detail: dict[str, object]) -> bool:
        """Set the alert's state; True only for the one caller that changed it (notify then)."""
        return alerts.alert_transition(self, service, key, firing, ts, detail)

    def alert_events(self, service: str, since: float | None = None, limit: int = 100) -> list[AlertEvent]:
        """The service's alert changes, newest first."""
        return alerts.alert_events(self, service, since, limit)

    def alert_states(self, service: str) -> dict[str, bool]:
        """Which of the service's alerts are firing now (by key)."""
        return alerts.alert_states(self, service)

    @abc.abstractmethod
    def _transact(self, work: Callable[[Executor], T]) -> T:
        """Run `work` in one write transaction; StoreUnavailable or StoreError on failure."""

    @abc.abstractmethod
    def _find_predictions(self, request_ids: Sequence[str]) -> dict[str, PredictionRecord]:
        """The newest logged prediction of each of `request_ids` that is stored."""

    @abc.abstractmethod
    def _insert_event(self, table: str, event: RulesEvent) -> int:
        """Insert the event into a history table; return its id."""

    def _select_events(self, table: str, service: str, version: str | None, limit: int | None) -> list[RulesEvent]:
        """Events of a service (and version) from a history table, newest first."""
        ph = self.placeholder
        sql = f"SELECT {RULES_COLUMNS} FROM {table} WHERE service = {ph}"
        params: list[Any] = [service]
        if version is not None:
            sql += f" AND version = {ph}"
            params.append(version)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {ph}"
            params.append(limit)
        return [rules_event_from_row(row) for row in self._query(sql, params)]

    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run a read query; StoreUnavailable or StoreError on failure."""

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def safe_url(url: str) -> str:
    """`url` with its password replaced by `***`, fit for logs and error messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def record_from_row(row: Sequence[Any]) -> PredictionRecord:
    """Build a record from a row selected in `COLUMNS` order."""
    return PredictionRecord(
        request_id=row[0],
        ts=row[1],
        service=row[2],
        model_version=row[3],
        latency_ms=row[4],
        inputs=bytes(row[5]),
        outputs=bytes(row[6]),
        rules_version=row[7],
        dataset_version=row[8],
        run_id=row[9],
        status=row[10],
        decision=None if row[11] is None else bytes(row[11]),
        shadow=None if row[12] is None else bytes(row[12]),
        mode=row[13] if len(row) > 13 else None,
    )


def check_schema_version(found: int, known: int, url: str) -> None:
    """Refuse a schema written by a newer shipway than this one."""
    if found > known:
        raise StoreError(
            f"the store at {url} has schema version {found}, but this shipway only "
            f"knows versions up to {known}; upgrade shipway "
            "(pip install -U shipway) on every process that uses this store"
        )


def where_clause(
    service: str | None, since: float | None, until: float | None, placeholder: str
) -> tuple[str, list[Any]]:
    """The WHERE clause shared by both backends' reads; `placeholder` is `?` or `%s`."""
    conditions: list[str] = []
    params: list[Any] = []
    if service is not None:
        conditions.append(f"service = {placeholder}")
        params.append(service)
    if since is not None:
        conditions.append(f"ts >= {placeholder}")
        params.append(since)
    if until is not None:
        conditions.append(f"ts < {placeholder}")
        params.append(until)
    return (" WHERE " + " AND ".join(conditions)) if conditions else "", params


def check_limit(limit: int | None) -> None:
    """Reject a negative or non-integer limit with a message that says what is valid."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise StoreError(f"limit must be a non-negative integer or None, got {limit!r}")


RULES_COLUMNS = "id, service, version, action, ts, actor, options, source"


def rules_event_from_row(row: Sequence[Any]) -> RulesEvent:
    """Build a rules event from a row selected in `RULES_COLUMNS` order."""
    options = row[6]
    if isinstance(options, (bytes, bytearray, memoryview, str)):
        options = json.loads(bytes(options) if not isinstance(options, str) else options)
    return RulesEvent(int(row[0]), row[1], row[2], row[3], float(row[4]), row[5], dict(options), row[7])
