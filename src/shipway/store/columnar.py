"""The prediction log as Parquet files: their layout and columns, and reads through DuckDB.

    <root>/predictions/day=2026-12-05/model_version=v3/part-0000000042.parquet
    <root>/feedback/snapshot-0000000042.parquet
    <root>/_state.json          what is exported: the export run, the log position, the columns

`store.export` writes the files (their columns: store/typed_columns.py); `read_log` reads a window of them with DuckDB and adds the
entries logged since the last export from the store, so a read is complete. A file whose run
number is above the state's was left by an export that crashed: readers skip it and the next
export deletes it. docs/analysis.md documents the layout for other readers.

pyarrow and duckdb are imported here only (`pip install 'shipway[analysis]'`).
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from shipway.errors import ExportError
from shipway.store.records import PredictionRecord
from shipway.store.typed_columns import LogSchema, need_arrow, to_table

if TYPE_CHECKING:
    import pyarrow as pa

    from shipway.store.base import Store

__all__ = [
    "BASE_COLUMNS",
    "FORMAT",
    "State",
    "day_of",
    "log_files",
    "logged_records",
    "read_log",
    "read_state",
    "records_of_table",
    "window_parts",
]

FORMAT = 1
PREDICTIONS = "predictions"
FEEDBACK = "feedback"
STATE_FILE = "_state.json"
_PART = re.compile(r"part-(\d+)\.parquet$")

#: The columns every exported prediction has, before the typed input and output fields.
BASE_COLUMNS = (
    "request_id",
    "ts",
    "service",
    "model_version",
    "rules_version",
    "dataset_version",
    "run_id",
    "latency_ms",
    "status",
    "decision",
    "shadow",
    "inputs",
    "outputs",
    "documents_ok",
    "mode",  # the service mode that answered; null in exports written before schema 9
)


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise ExportError(
            f"reading the Parquet export needs duckdb, which is not installed ({exc}); "
            "install it with pip install 'shipway[analysis]'"
        ) from exc
    return duckdb


def day_of(ts: float) -> str:
    """The UTC day of a Unix time, as partitions name it."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def partition_dir(root: Path, day: str, model_version: str) -> Path:
    return root / PREDICTIONS / f"day={day}" / f"model_version={quote(model_version, safe='')}"


def part_name(seq: int) -> str:
    return f"part-{seq:010d}.parquet"


# -- the state -------------------------------------------------------------------------


@dataclass(slots=True)
class State:
    """What the export holds: files of runs up to `seq`, every log entry up to `position`."""

    store: str  # the store's URL, password masked: an export answers only for its own store
    seq: int = 0
    position: int = -1  # -1: nothing exported yet (SQLite: the rows of schema versions before 4 too)
    kept_from: str | None = None  # the oldest day still exported, after retention dropped older ones
    schema: LogSchema = field(default_factory=LogSchema)
    rows: int = 0
    feedback: str | None = None  # the newest feedback snapshot's file name
    feedback_mark: list[Any] | None = None  # what the feedback table looked like then

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT,
                "store": self.store,
                "seq": self.seq,
                "position": self.position,
                "kept_from": self.kept_from,
                "rows": self.rows,
                "fields": self.schema.to_dict(),
                "feedback": self.feedback,
                "feedback_mark": self.feedback_mark,
            },
            option=orjson.OPT_INDENT_2,
        )


def read_state(root: Path) -> State | None:
    """The export's state in `root`, None when nothing was exported there."""
    path = root / STATE_FILE
    try:
        data = json.loads(path.read_bytes())
        return State(
            data["store"],
            int(data["seq"]),
            int(data["position"]),
            data.get("kept_from"),
            LogSchema.from_dict(data.get("fields", [])),
            int(data.get("rows", 0)),
            data.get("feedback"),
            data.get("feedback_mark"),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(
            f"the export state {path} cannot be read ({exc}); delete the folder {root} to export "
            "the log again from the start"
        ) from exc


def write_state(root: Path, state: State) -> None:
    """Replace the state file atomically (write, fsync, rename): a crash leaves the old or the new."""
    path = root / STATE_FILE
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(state.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _sync_dir(root)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading -------------------------------------------------------------------------


def log_files(root: Path, state: State, since: float | None = None, until: float | None = None) -> list[Path]:
    """The committed prediction files of days that can hold entries with `since <= ts < until`."""
    low = day_of(since) if since is not None else ""
    high = day_of(until) if until is not None else "~"
    found: list[Path] = []
    base = root / PREDICTIONS
    if not base.is_dir():
        return found
    for day_dir in sorted(base.iterdir()):
        day = day_dir.name.removeprefix("day=")
        if not day_dir.name.startswith("day=") or not low <= day <= high:
            continue
        for file in sorted(day_dir.glob("model_version=*/part-*.parquet")):
            match = _PART.search(file.name)
            if match and int(match.group(1)) <= state.seq:
                found.append(file)
    return found


def covers(state: State | None, store: Store, since: float | None) -> bool:
    """Whether the export of `state` holds everything of `store` from `since` up to its position."""
    if state is None or state.store != store.url:
        return False
    return state.kept_from is None or (since is not None and day_of(since) >= state.kept_from)


def read_log(
    store: Store,
    root: Path,
    *,
    service: str | None = None,
    since: float | None = None,
    until: float | None = None,
    columns: Sequence[str] | None = None,
    slowest: int | None = None,
    ordered: bool = True,
) -> pa.Table | None:
    """The logged predictions with `since <= ts < until`, in ts order, as an Arrow table:
    the exported files through DuckDB, then what the store logged since the last export.

    `columns` picks columns (all by default); a typed column absent from the files is all null.
    `slowest=n` keeps the n of highest latency instead, slowest first. `ordered=False` leaves
    the rows in file order (sorting a wide window costs more than reading it).
    None when the export in `root` does not cover the window (none yet, another store's, or
    retention dropped part of it): read the store then.
    """
    window = exported_window(store, root, service, since, until)
    if window is None:
        return None
    pa, _ = need_arrow()
    files, tail_table = window
    wanted = list(columns) if columns is not None else None
    parts = []
    if files:
        parts.append(_query_files(files, service, since, until, wanted, slowest, ordered))
    if tail_table.num_rows or not parts:
        parts.append(_select(pa, tail_table, wanted or list(tail_table.column_names)))
    names = wanted or list(dict.fromkeys(n for p in parts for n in p.column_names))
    table = pa.concat_tables([_select(pa, p, names) for p in parts])
    import pyarrow.compute as pc

    if slowest is not None:
        order = pc.sort_indices(table, [("latency_ms", "descending"), ("ts", "ascending")])
        return table.take(order[:slowest])
    if ordered and len(parts) > 1 and "ts" in names:
        table = table.take(pc.sort_indices(table, [("ts", "ascending")]))
    return table


def exported_window(
    store: Store, root: Path, service: str | None, since: float | None, until: float | None
) -> tuple[list[Path], pa.Table] | None:
    """The committed files that can hold the window, and the store's entries logged since the
    export as a table of its columns; None when the export does not cover the window."""
    state = read_state(root)
    if state is None or not covers(state, store, since):
        return None
    need_arrow()
    tail = [g for _, g in store.iter_log(state.position, service=service, since=since, until=until)]
    return log_files(root, state, since, until), to_table(tail, state.schema)


def window_parts(
    store: Store, root: Path, service: str | None, since: float | None, until: float | None
) -> tuple[list[Path], pa.Table]:
    """What a job over the export of `store` in `root` reads for a window, so that it sees the
    rows a read of the store sees (`read_log`, `window_from_store`): the committed files of the
    window's days and, as one table, the entries the store logged since the export's last run;
    or, when the export does not cover the window (retention dropped some of its days), no file
    and every entry of the window from the store, as those reads fall back to the store then."""
    window = exported_window(store, root, service, since, until)
    if window is not None:
        return window
    state = read_state(root)
    every = [g for _, g in store.iter_log(-1, service=service, since=since, until=until)]
    return [], to_table(every, state.schema if state is not None else LogSchema())


def logged_records(
    store: Store,
    export: Path | None,
    *,
    service: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> Iterator[PredictionRecord]:
    """The logged predictions with `since <= ts < until` in ts order, as `store.iter_predictions`
    yields them: from the export in `export` a day at a time when it covers the window (memory
    holds one day), with what the store logged since; from the store otherwise."""
    state = read_state(export) if export is not None else None
    if export is None or state is None or not covers(state, store, since):
        return store.iter_predictions(service=service, since=since, until=until)
    need_arrow()
    by_day: dict[str, list[Path]] = {}
    for file in log_files(export, state, since, until):
        by_day.setdefault(file.parent.parent.name, []).append(file)
    columns = [c for c in BASE_COLUMNS if c != "documents_ok"]

    def exported() -> Iterator[PredictionRecord]:
        for files in by_day.values():
            yield from records_of_table(_query_files(files, service, since, until, columns))

    tail = [g for _, g in store.iter_log(state.position, service=service, since=since, until=until)]
    logged = records_of_table(to_table(tail, LogSchema()).sort_by("ts"))
    return heapq.merge(exported(), logged, key=_ts)


def _ts(record: PredictionRecord) -> float:
    return record.ts


def _query_files(
    files: list[Path],
    service: str | None,
    since: float | None,
    until: float | None,
    columns: list[str] | None,
    slowest: int | None = None,
    ordered: bool = True,
) -> pa.Table:
    duckdb = _duckdb()
    conditions, params = [], [[str(f) for f in files]]
    for sql, value in (("service = ?", service), ("ts >= ?", since), ("ts < ?", until)):
        if value is not None:
            conditions.append(sql)
            params.append(value)  # type: ignore[arg-type]
    source = "read_parquet(?, union_by_name = true, hive_partitioning = false)"
    con = duckdb.connect()
    try:
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}", params[:1]).fetchall()}
        picked = "*" if columns is None else ", ".join(_quote(c) for c in columns if c in present) or "ts"
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        order = " ORDER BY ts" if ordered and (columns is None or "ts" in columns) else ""
        if slowest is not None:
            order = f" ORDER BY latency_ms DESC, ts LIMIT {int(slowest)}"
        relation = con.sql(f"SELECT {picked} FROM {source}{where}{order}", params=params)
        # to_arrow_table from duckdb 1.4 on; fetch_arrow_table before.
        return relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.fetch_arrow_table()
    finally:
        con.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select(pa: Any, table: Any, names: list[str]) -> Any:
    """`table`'s columns `names`, in order; a missing one all null (a field added since)."""
    arrays = []
    for name in names:
        if name in table.column_names:
            arrays.append(table.column(name))
        else:
            arrays.append(pa.nulls(table.num_rows, _default_type(pa, name)))
    return pa.table(dict(zip(names, arrays, strict=True))) if names else table


def _default_type(pa: Any, name: str) -> Any:
    return {"ts": pa.float64(), "latency_ms": pa.float64(), "status": pa.int32(), "documents_ok": pa.bool_()}.get(
        name, pa.string()
    )


def records_of_table(table: pa.Table, chunk: int = 50_000) -> Iterator[PredictionRecord]:
    """The rows of a table of BASE_COLUMNS as PredictionRecords (for backtests and replays)."""
    for batch in table.to_batches(chunk):
        cols = {
            name: batch.column(name).to_pylist()
            for name in BASE_COLUMNS
            if name != "documents_ok" and name in batch.schema.names
        }
        if "mode" not in batch.schema.names:  # a table read before schema 9
            cols["mode"] = [None] * batch.num_rows
        for (
            rid,
            ts,
            service,
            model,
            rules,
            dataset,
            run,
            latency,
            status,
            decision,
            shadow,
            inputs,
            outputs,
            mode,
        ) in zip(*cols.values(), strict=True):
            yield PredictionRecord(
                rid,
                ts,
                service,
                model,
                latency,
                inputs.encode(),
                outputs.encode(),
                rules,
                dataset,
                run,
                status,
                None if decision is None else decision.encode(),
                None if shadow is None else shadow.encode(),
                mode,
            )
