"""Export the prediction log and the feedback to Parquet files, incrementally and exactly once.

One export run takes what the store logged since the last run (up to the log position it
reads first), in batches. Each batch becomes one file per day and model version, named by
the batch's run number, and is committed by rewriting the state file (atomically) with the
new run number and log position. A crash between the two leaves files above the state's run
number: readers skip them, and the next run deletes them and exports the same entries again.
So every logged entry lands in exactly one committed file. Layout: store/columnar.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.errors import ExportError
from shipway.store.columnar import (
    FEEDBACK,
    PREDICTIONS,
    State,
    day_of,
    part_name,
    partition_dir,
    read_state,
    write_state,
)
from shipway.store.records import LogColumns
from shipway.store.typed_columns import LogSchema, need_arrow, to_table

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = ["ExportResult", "Exporter", "write_parquet", "write_partitioned"]

log = logging.getLogger("shipway.export")

_FEEDBACK_COLUMNS = (
    "request_id, name, value, actual, number, ts, received, service, pred_ts, model_version, "
    "rules_version, predicted, confidence, rank"
)


@dataclass(slots=True)
class ExportResult:
    """What one export run did."""

    rows: int = 0
    files: list[str] = field(default_factory=list)
    position: int = -1
    feedback_rows: int | None = None  # None: the feedback had not changed
    dropped: list[str] = field(default_factory=list)  # partitions (days) removed by retention
    archived: list[str] = field(default_factory=list)  # or moved to the archive folder

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "files": len(self.files),
            "position": self.position,
            "feedback_rows": self.feedback_rows,
            "dropped": self.dropped,
            "archived": self.archived,
        }


class Exporter:
    """Exports `store`'s log into `root`. Cheap to build; `run()` does one pass (store/log_upkeep.py repeats it)."""

    def __init__(
        self,
        store: Store,
        root: Path,
        schema: LogSchema,
        *,
        batch_rows: int = 500_000,
        retention_days: int = 0,
        archive_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.root = root
        self.schema = schema
        self.batch_rows = batch_rows
        self.retention_days = retention_days
        self.archive_dir = archive_dir
        self._clean = False  # no run of this process's has been cut short since the orphans were removed

    def run(self, now: float | None = None, stop: threading.Event | None = None) -> ExportResult:
        """Export everything logged up to now, then the feedback, then apply retention. With
        `stop` set, a run ends after the batch it is writing (what it committed stays)."""
        need_arrow()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(
                f"cannot create the export folder {self.root}: {exc}; set export.dir to a writable folder"
            ) from exc
        state = read_state(self.root) or State(self.store.url)
        if state.store != self.store.url:
            raise ExportError(
                f"the export folder {self.root} holds the log of the store {state.store}, not of "
                f"{self.store.url}; set export.dir to another folder, or delete this one to export anew"
            )
        if not self._clean:
            # Once per process, and after a run that failed: a run of another process, or this
            # one's, may have left files. Listing every file on each run would cost more with
            # every day exported (a continuous export writes thousands a day).
            self._remove_orphans(state)
        self._clean = False
        state.schema = self.schema
        result = ExportResult()
        target = self.store.log_position()
        pending: list[LogColumns] = []
        rows, last = 0, state.position
        for position, group in self.store.iter_log(state.position, target, chunk=min(50_000, self.batch_rows)):
            if rows >= self.batch_rows and position != last:
                self._commit(state, pending, last, result)
                pending, rows = [], 0
                if stop is not None and stop.is_set():
                    result.position = state.position
                    self._clean = True  # what it wrote is committed
                    return result
            pending.append(group)
            rows += len(group)
            last = position
        if pending or target > state.position:
            self._commit(state, pending, max(target, last), result)
        result.position = state.position
        result.feedback_rows = self._feedback(state)
        self._retain(state, time.time() if now is None else now, result)
        self._clean = True
        return result

    def _commit(self, state: State, groups: Sequence[LogColumns], position: int, result: ExportResult) -> None:
        """Write one batch's files under the next run number, then the state that commits them."""
        seq = state.seq + 1
        n = sum(map(len, groups))
        if n:
            result.files += write_partitioned(to_table(groups, self.schema), self.root, part_name(seq))
        state.seq, state.position, state.rows = seq, position, state.rows + n
        write_state(self.root, state)
        result.rows += n

    def _remove_orphans(self, state: State) -> None:
        """Files of a run that crashed before committing, and half-written files."""
        base = self.root / PREDICTIONS
        if base.is_dir():
            for file in base.glob("day=*/model_version=*/*"):
                if file.suffix == ".tmp" or _seq_of(file.name) > state.seq:
                    file.unlink()
        for file in (self.root / FEEDBACK).glob("*") if (self.root / FEEDBACK).is_dir() else ():
            if file.name != state.feedback:
                file.unlink()

    def _feedback(self, state: State) -> int | None:
        """A new snapshot of the feedback table when it changed (values are replaced and joined
        in place, so it is taken whole); how many rows, None when unchanged."""
        mark_rows = self.store._query("SELECT COUNT(*), MAX(received), COUNT(pred_ts) FROM feedback", [])
        mark = [None if v is None else float(v) for v in mark_rows[0]]
        if mark == state.feedback_mark or (state.feedback is None and not mark[0]):
            return None
        pa, _ = need_arrow()
        rows = self.store._query(f"SELECT {_FEEDBACK_COLUMNS} FROM feedback ORDER BY id", [])
        names = [c.strip() for c in _FEEDBACK_COLUMNS.split(",")]
        table = pa.table(
            {name: pa.array([r[i] for r in rows], _FEEDBACK_TYPES[name](pa)) for i, name in enumerate(names)}
        )
        folder = self.root / FEEDBACK
        folder.mkdir(parents=True, exist_ok=True)
        old, name = state.feedback, f"snapshot-{state.seq:010d}-{time.time_ns()}.parquet"
        write_parquet(table, folder / name)
        state.feedback, state.feedback_mark = name, mark
        write_state(self.root, state)
        if old is not None:
            (folder / old).unlink(missing_ok=True)
        return len(rows)

    def _retain(self, state: State, now: float, result: ExportResult) -> None:
        """Drop (or archive) the partitions of days older than `retention_days`."""
        if self.retention_days <= 0:
            return
        cutoff = day_of(now - self.retention_days * 86400)
        base = self.root / PREDICTIONS
        old = sorted(d for d in base.glob("day=*") if d.name.removeprefix("day=") < cutoff) if base.is_dir() else []
        if not old:
            return
        # The state first: from here on readers go to the store for windows before the cutoff.
        state.kept_from = max(cutoff, state.kept_from or cutoff)
        write_state(self.root, state)
        for day_dir in old:
            if self.archive_dir is not None:
                target = self.archive_dir / PREDICTIONS / day_dir.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():  # a day archived before: add the new files beside the old
                    for file in day_dir.rglob("*.parquet"):
                        dest = target / file.relative_to(day_dir)
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.move(str(file), dest)
                    shutil.rmtree(day_dir)
                else:
                    shutil.move(str(day_dir), target)
                result.archived.append(day_dir.name)
            else:
                shutil.rmtree(day_dir)
                result.dropped.append(day_dir.name)


_FEEDBACK_TYPES: dict[str, Any] = {
    "request_id": lambda pa: pa.string(),
    "name": lambda pa: pa.string(),
    "value": lambda pa: pa.string(),
    "actual": lambda pa: pa.string(),
    "number": lambda pa: pa.float64(),
    "ts": lambda pa: pa.float64(),
    "received": lambda pa: pa.float64(),
    "service": lambda pa: pa.string(),
    "pred_ts": lambda pa: pa.float64(),
    "model_version": lambda pa: pa.string(),
    "rules_version": lambda pa: pa.string(),
    "predicted": lambda pa: pa.string(),
    "confidence": lambda pa: pa.float64(),
    "rank": lambda pa: pa.int32(),
}


def _partitions(table: Any) -> dict[tuple[str, str], Any]:
    """Row indices by (UTC day, model version); None for the whole table when it is one partition
    (the usual batch), so nothing is copied."""
    import numpy as np

    days = np.floor_divide(table.column("ts").to_numpy(), 86400).astype(np.int64)
    models = table.column("model_version").combine_chunks().dictionary_encode()
    codes = models.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = models.dictionary.to_pylist()
    keys = days * len(names) + codes
    first = keys[0]
    if (keys == first).all():
        return {(day_of(int(first // len(names)) * 86400), names[int(first % len(names))]): None}
    unique, inverse = np.unique(keys, return_inverse=True)
    return {
        (day_of(int(k // len(names)) * 86400), names[int(k % len(names))]): np.flatnonzero(inverse == i)
        for i, k in enumerate(unique)
    }


def write_partitioned(table: Any, root: Path, name: str) -> list[str]:
    """The table's rows as one file `name` per (day, model version) partition under `root`."""
    files = []
    for (day, model), rows in _partitions(table).items():
        folder = partition_dir(root, day, model)
        folder.mkdir(parents=True, exist_ok=True)
        write_parquet(table if rows is None else table.take(rows), folder / name)
        files.append(str(folder / name))
    return files


# The columns with few distinct values (a file's context) and the ones readers filter on: a
# dictionary for the others (request ids, documents, fields) is built and then given up,
# and their min/max statistics serve no reader; both cost the writer about 30% (issue 20).
_DICTIONARY = ["service", "model_version", "rules_version", "dataset_version", "run_id", "mode", "status"]
_STATISTICS = ["ts", *_DICTIONARY]


def write_parquet(table: Any, path: Path) -> None:
    """Write under a temporary name, fsync, rename: a file is whole or absent."""
    _, pq = need_arrow()
    tmp = path.with_name(path.name + ".tmp")
    names = set(table.column_names)
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        compression_level=1,  # the fastest, and as small here
        use_dictionary=[c for c in _DICTIONARY if c in names],
        write_statistics=[c for c in _STATISTICS if c in names],
    )
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _seq_of(name: str) -> int:
    digits = name.removeprefix("part-").split(".", 1)[0]
    return int(digits) if digits.isdigit() else 0
