"""A window of the exported log read for statistics: numeric columns as arrays, other columns
as counts, each column decoded once, no row materialised.

`read_log` hands back every row of the columns asked for, which a drift window of ten million
rows cannot afford for its string columns: converting them to Arrow costs more than counting
them. `read_window` reads the export's files and the entries the store logged since the last
export (the same rows `read_log` reads) with pyarrow, a file per thread:

- the rows, why some were left out (a status other than 200, documents that were not JSON),
  the first and last times, and the count of every value of every counted column (read as
  dictionaries, so a value is hashed once per file, not once per row);
- the numeric columns of the rows kept, as float64 (null as NaN), each read from the files
  when the caller asks for it (`NumberColumns`): a caller that compares columns on several
  threads decodes one while it sorts another, and holds few columns at once.

pyarrow decodes without holding the GIL, so the threads keep every core busy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.store.columnar import exported_window

if TYPE_CHECKING:
    import numpy as np

    from shipway.store.base import Store

__all__ = ["NumberColumns", "WindowColumns", "read_window"]

# The rows a window keeps: answered (status 200) with documents that were JSON. A null in any
# column tested leaves the row out, as SQL's WHERE does.
KEPT = "status = 200 AND coalesce(documents_ok, false)"


@dataclass(slots=True)
class WindowColumns:
    """The rows kept (status 200, documents readable) of a window, by column."""

    n_rows: int
    first_ts: float | None
    last_ts: float | None
    excluded: dict[str, int] = field(default_factory=dict)  # why rows were left out -> how many
    numbers: Mapping[str, np.ndarray] = field(default_factory=dict)  # column -> float64 values, NaN for null
    counts: dict[str, list[tuple[Any, int]]] = field(default_factory=dict)  # column -> (value or None, count)


def read_window(
    store: Store,
    root: Path,
    *,
    service: str | None = None,
    since: float | None = None,
    until: float | None = None,
    numbers: Sequence[str] = (),
    counted: Sequence[str] = (),
) -> WindowColumns | None:
    """The logged predictions with `since <= ts < until`: `numbers` as arrays (read when asked
    for, see `NumberColumns`), `counted` as counts of their values. None when the export in
    `root` does not cover the window (as `read_log`): read the store then."""
    window = exported_window(store, root, service, since, until)
    if window is None:
        return None
    files, tail_table = window
    counted = list(dict.fromkeys(counted))
    # The store's tail: iter_log chose the service and times already.
    sources: list[tuple[Any, tuple[str | None, float | None, float | None]]] = [
        (str(f), (service, since, until)) for f in files
    ]
    if tail_table.num_rows:
        sources.append((tail_table, (None, None, None)))

    def summarise(item: tuple[Any, tuple[str | None, float | None, float | None]]) -> _Part:
        return _summarise(item[0], *item[1], counted)

    with ThreadPoolExecutor(max(1, min(len(sources), os.cpu_count() or 1)), "shipway-window") as pool:
        parts = list(pool.map(summarise, sources))
    result = WindowColumns(0, None, None, counts={c: [] for c in counted})
    total = ok = 0
    tallies: dict[str, dict[Any, int]] = {c: {} for c in counted}
    for part in parts:
        total, ok, result.n_rows = total + part.total, ok + part.ok, result.n_rows + part.kept
        if part.first_ts is not None:
            result.first_ts = part.first_ts if result.first_ts is None else min(result.first_ts, part.first_ts)
        if part.last_ts is not None:
            result.last_ts = part.last_ts if result.last_ts is None else max(result.last_ts, part.last_ts)
        for column, pairs in part.counts.items():
            tally = tallies[column]
            for value, n in pairs:
                tally[value] = tally.get(value, 0) + n
    for reason, n in (("status other than 200", total - ok), ("inputs or outputs not valid JSON", ok - result.n_rows)):
        if n:
            result.excluded[reason] = n
    result.counts = {c: [(value, n) for value, n in tallies[c].items() if n] for c in counted}
    if numbers:
        kept = [(source, part.mask) for (source, _), part in zip(sources, parts, strict=True)]
        result.numbers = NumberColumns(list(numbers), kept, result.n_rows)
    return result


@dataclass(slots=True)
class _Part:
    """One file's (or the tail's) share of the window."""

    total: int  # rows in the window
    ok: int  # of which answered with status 200
    kept: int  # of which with readable documents
    first_ts: float | None
    last_ts: float | None
    counts: dict[str, list[tuple[Any, int]]]
    mask: np.ndarray | None  # the rows kept; None for all


def _summarise(source: Any, service: str | None, since: float | None, until: float | None, counted: list[str]) -> _Part:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    needed = {"ts": pa.float64(), "status": pa.int32(), "documents_ok": pa.bool_()}
    if service is not None:
        needed["service"] = pa.string()
    if isinstance(source, str):
        file = pq.ParquetFile(source)
        schema = file.schema_arrow
        present = set(schema.names)
        strings = [c for c in counted if c in present and pa.types.is_string(schema.field(c).type)]
        if strings:  # as dictionaries: each value is hashed once per page, not once per row
            file = pq.ParquetFile(source, metadata=file.metadata, read_dictionary=strings)
        table = file.read(columns=[c for c in [*needed, *counted] if c in present], use_threads=False)
    else:
        table = source
    n = table.num_rows

    def column(name: str, kind: Any = None) -> Any:
        if name in table.column_names:
            return table.column(name)
        return pa.nulls(n, kind or needed.get(name, pa.string()))

    window = None
    for name, op, value in (("service", pc.equal, service), ("ts", pc.greater_equal, since), ("ts", pc.less, until)):
        if value is not None:
            test = op(column(name), value)
            window = test if window is None else pc.and_(window, test)
    answered = pc.equal(column("status"), 200)
    if window is not None:
        answered = pc.and_(answered, window)
    kept = pc.and_(answered, column("documents_ok")).fill_null(False)
    total = n if window is None else int(pc.sum(window.fill_null(False)).as_py() or 0)
    ok = int(pc.sum(answered.fill_null(False)).as_py() or 0)
    n_kept = int(pc.sum(kept).as_py() or 0)
    everything = n_kept == n
    ts = column("ts") if everything else column("ts").filter(kept)
    bounds = pc.min_max(ts).as_py() if n_kept else {"min": None, "max": None}
    counts: dict[str, list[tuple[Any, int]]] = {}
    for name in counted:
        values = column(name) if everything else column(name).filter(kept)
        tally: dict[Any, int] = {}
        for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:  # each its own dictionary
            found = pc.value_counts(chunk)
            for value, k in zip(found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True):
                tally[value] = tally.get(value, 0) + k
        counts[name] = list(tally.items())
    mask = None if everything else kept.to_numpy(zero_copy_only=False)
    return _Part(total, ok, n_kept, bounds["min"], bounds["max"], counts, mask)


class NumberColumns(Mapping[str, "np.ndarray"]):
    """The numeric columns of a window's kept rows, each read from the export's files (and the
    store's tail) when it is asked for: a new float64 array at every read, NaN for null, which
    the caller owns (it may sort it in place). pyarrow decodes without holding the GIL, so
    threads that each read and sort a column keep both cores busy, and memory holds only the
    columns being worked on."""

    def __init__(self, names: list[str], parts: list[tuple[Any, np.ndarray | None]], n: int) -> None:
        self._names = names
        self._parts = parts  # (a file's path or the tail table, its kept rows: None for all, else a mask)
        self.n = n

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        import numpy as np

        out = np.empty(self.n, dtype=np.float64)
        at = 0
        for source, mask in self._parts:
            start = 0
            for chunk in _chunks(source, name):
                values = chunk.to_numpy(zero_copy_only=False)  # nulls as NaN (integers then as float64)
                if mask is not None:
                    values = values[mask[start : start + len(chunk)]]
                    start += len(chunk)
                out[at : at + len(values)] = values  # integers rounded to the nearest double, as SQL's CAST does
                at += len(values)
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _chunks(source: Any, name: str) -> list[Any]:
    """One column of a file or table, as Arrow arrays; all null where it lacks the column (a
    field added since the file was written)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(source, str):
        file = pq.ParquetFile(source)
        if name in file.schema_arrow.names:
            return list(file.read(columns=[name], use_threads=False).column(0).chunks)  # on the caller's thread
        return [pa.nulls(file.metadata.num_rows, pa.float64())]
    if name in source.column_names:
        return list(source.column(name).chunks)
    return [pa.nulls(source.num_rows, pa.float64())]
