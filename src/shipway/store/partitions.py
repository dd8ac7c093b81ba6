"""The PostgreSQL prediction log partitioned by day: schema step 11, partitions made ahead, whole days dropped.

`predictions` is range-partitioned on `ts` (Unix seconds), one partition per UTC day named
`predictions_YYYYMMDD`. Step 11 turns an unpartitioned table into one without copying a row:
the old table becomes the partition `predictions_legacy`, covering everything before the end
of the day of the migration (or of its newest row), and later days get partitions of their own.

The log's writer makes the partitions it needs, and the next day's ahead of it, before it
writes (`ensure`): a day's first write checks the catalogue, and creates a partition only when
none covers the day, under an advisory lock so that workers and replicas take turns. Retention
drops whole partitions (`DETACH`, then `DROP`): no row is deleted and nothing is vacuumed.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["DAY", "MIGRATION", "Partition", "days_of", "drop", "ensure", "partition_name", "partitions"]

DAY = 86400

# Serialises partition changes between processes; not the migrations' key.
_LOCK_KEY = 0x5B1F_7A8

# Schema step 11. The old table keeps its rows and its indexes (renamed, then attached to the
# new table's as they match); its identity sequence is replaced by one the new table owns,
# started after its largest id, so ids keep growing in write order (the export reads by id).
MIGRATION: tuple[str, ...] = (
    "ALTER TABLE predictions RENAME TO predictions_legacy",
    "ALTER TABLE predictions_legacy RENAME CONSTRAINT predictions_request_id_ts_key "
    "TO predictions_legacy_request_id_ts_key",
    "ALTER INDEX predictions_service_ts RENAME TO predictions_legacy_service_ts",
    "ALTER INDEX predictions_ts RENAME TO predictions_legacy_ts",
    # A partitioned table's unique keys must hold the partition key: ids are unique by their
    # sequence, and indexed for the export's reads in id order.
    "ALTER TABLE predictions_legacy DROP CONSTRAINT predictions_pkey",
    "CREATE INDEX predictions_legacy_id ON predictions_legacy (id)",
    "ALTER TABLE predictions_legacy ALTER COLUMN id DROP IDENTITY",
    "CREATE SEQUENCE predictions_id_seq",
    "SELECT setval('predictions_id_seq', GREATEST(COALESCE(MAX(id), 0), 1), MAX(id) IS NOT NULL) "
    "FROM predictions_legacy",
    # The old table's columns, in its order, with their types and NOT NULLs.
    "CREATE TABLE predictions (LIKE predictions_legacy) PARTITION BY RANGE (ts)",
    "ALTER TABLE predictions ALTER COLUMN id SET DEFAULT nextval('predictions_id_seq')",
    "ALTER TABLE predictions ADD UNIQUE (request_id, ts)",
    "ALTER SEQUENCE predictions_id_seq OWNED BY predictions.id",
    "CREATE INDEX predictions_id ON predictions (id)",
    "CREATE INDEX predictions_service_ts ON predictions (service, ts)",
    "CREATE INDEX predictions_ts ON predictions (ts)",
    # An empty old table goes; one with rows covers up to the end of the later of today and
    # its newest row's day (attaching checks every row against that bound, reading them once).
    f"""DO $$
    DECLARE
        upper_bound DOUBLE PRECISION;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM predictions_legacy) THEN
            DROP TABLE predictions_legacy;
        ELSE
            SELECT (GREATEST(floor(extract(epoch FROM now()) / {DAY}), floor(MAX(ts) / {DAY})) + 1) * {DAY}
                INTO upper_bound FROM predictions_legacy;
            EXECUTE format('ALTER TABLE predictions ATTACH PARTITION predictions_legacy '
                           'FOR VALUES FROM (MINVALUE) TO (%s)', upper_bound);
        END IF;
    END $$""",
)

_BOUND = re.compile(r"FROM \((.+?)\) TO \((.+?)\)")


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of `predictions`: its table and the `ts` range `[since, until)` it holds."""

    name: str
    since: float  # -inf for the legacy partition
    until: float

    def covers(self, day: int) -> bool:
        return self.since <= day * DAY < self.until


def partition_name(day: int) -> str:
    """`predictions_YYYYMMDD` for the UTC day `day` (days since 1970-01-01)."""
    return "predictions_" + time.strftime("%Y%m%d", time.gmtime(day * DAY))


def days_of(times: Iterable[float]) -> set[int]:
    """The UTC days from the earliest to the latest of `times` (non-finite ones left out:
    the table refuses them)."""
    finite = sorted(t for t in times if math.isfinite(t))
    if not finite:
        return set()
    return set(range(int(finite[0] // DAY), int(finite[-1] // DAY) + 1))


def partitions(run: Any) -> list[Partition]:
    """The partitions of `predictions`, oldest first; `run(sql)` returns rows."""
    rows = run(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'predictions'::regclass"
    )
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match:
            found.append(Partition(name, _number(match.group(1)), _number(match.group(2))))
    return sorted(found, key=lambda p: p.since)


def ensure(run: Any, days: set[int]) -> set[int]:
    """Make a partition for each of `days` that none covers; run in a transaction of its own.
    Returns the days covered now. A second process waits for the first's change, then finds
    the partition made."""
    missing = _uncovered(partitions(run), days)
    if missing:
        run("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        run("SET LOCAL lock_timeout = '10s'")  # behind a long reader: fail, spool, retry
        for day in sorted(_uncovered(partitions(run), days)):
            run(
                f"CREATE TABLE {partition_name(day)} PARTITION OF predictions "
                f"FOR VALUES FROM ({day * DAY}) TO ({(day + 1) * DAY})"
            )
    return days


def drop(run: Any, partition: Partition) -> None:
    """Detach and drop one partition, in one transaction."""
    run("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    run("SET LOCAL lock_timeout = '10s'")
    run(f'ALTER TABLE predictions DETACH PARTITION "{partition.name}"')
    run(f'DROP TABLE "{partition.name}"')


def _uncovered(found: list[Partition], days: set[int]) -> set[int]:
    return {d for d in days if not any(p.covers(d) for p in found)}


def _number(text: str) -> float:
    text = text.strip().strip("'")
    if text == "MINVALUE":
        return -math.inf
    if text == "MAXVALUE":
        return math.inf
    return float(text)
