"""Retention of the prediction log in the store: whole days older than `log.retention_days` go.

PostgreSQL drops the day partitions (store/partitions.py) whose every entry is older than
the cutoff; SQLite, whose log is one table of segments, deletes the entries before it
(store/segments.py `trim`). With an archive folder, a part's entries are written there as
Parquet first, in the export's layout and columns, one file per batch named after the part,
so a run cut short and run again rewrites the same files instead of adding copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shipway.store.export import write_partitioned
from shipway.store.partitions import DAY, Partition
from shipway.store.records import LogColumns
from shipway.store.typed_columns import LogSchema, to_table

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = ["RetentionResult", "retain_log"]

_BATCH_ROWS = 200_000


@dataclass(slots=True)
class RetentionResult:
    """What one retention pass removed (PostgreSQL partitions, or SQLite's `before <day>`) and archived."""

    dropped: list[str] = field(default_factory=list)
    archived_rows: int = 0
    files: list[str] = field(default_factory=list)


def retain_log(
    store: Store,
    days: int,
    now: float,
    *,
    archive_dir: Path | None = None,
    schema: LogSchema | None = None,
) -> RetentionResult:
    """Remove the log's entries of UTC days older than `days` days before `now` (the day that
    holds `now - days` is kept, as the export's retention keeps it); 0 keeps everything."""
    result = RetentionResult()
    if days <= 0:
        return result
    cutoff = float((int(now - days * DAY) // DAY) * DAY)
    for part in store.expired_log(cutoff):
        if archive_dir is not None:
            _archive(store, part, archive_dir, schema or LogSchema(), result)
        store.drop_log(part)
        result.dropped.append(part.name)
    return result


def _archive(store: Store, part: Partition, root: Path, schema: LogSchema, result: RetentionResult) -> None:
    since = None if part.since == float("-inf") else part.since
    tag = part.name.replace(" ", "-")
    batch: list[LogColumns] = []
    rows = number = 0
    for _, group in store.iter_log(-1, since=since, until=part.until):
        batch.append(group)
        rows += len(group)
        if rows >= _BATCH_ROWS:
            result.files += write_partitioned(to_table(batch, schema), root, f"log-{tag}-{number:05d}.parquet")
            result.archived_rows += rows
            batch, rows, number = [], 0, number + 1
    if batch:
        result.files += write_partitioned(to_table(batch, schema), root, f"log-{tag}-{number:05d}.parquet")
        result.archived_rows += rows
