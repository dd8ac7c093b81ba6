"""A window of the exported log read for statistics: numeric columns as arrays, other columns
as counts, each column decoded once, no row materialised.

`read_log` hands back every row of the columns asked for, which a drift window of ten million
rows cannot afford for its string columns: converting them to Arrow costs more than counting
them. `read_window` asks DuckDB instead, over the export's files and the entries the store
logged since the last export (the same rows `read_log` reads):

- one aggregating scan: the rows, why some were left out (a status other than 200, documents
  that were not JSON), the first and last times, and the count of every value of every counted
  column (one GROUPING SETS query, so the columns are read once);
- one scan of the numeric columns of the rows kept, as float64 (null as NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.store.columnar import _duckdb, _quote, exported_window

if TYPE_CHECKING:
    import numpy as np

    from shipway.store.base import Store

__all__ = ["WindowColumns", "read_window"]

KEPT = "status = 200 AND coalesce(documents_ok, false)"


@dataclass(slots=True)
class WindowColumns:
    """The rows kept (status 200, documents readable) of a window, by column."""

    n_rows: int
    first_ts: float | None
    last_ts: float | None
    excluded: dict[str, int] = field(default_factory=dict)  # why rows were left out -> how many
    numbers: dict[str, np.ndarray] = field(default_factory=dict)  # column -> float64 values, NaN for null
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
    """The logged predictions with `since <= ts < until`: `numbers` as arrays, `counted` as
    counts of their values. None when the export in `root` does not cover the window (as
    `read_log`): read the store then."""
    window = exported_window(store, root, service, since, until)
    if window is None:
        return None
    files, tail_table = window
    wanted = ["ts", "status", "documents_ok", *dict.fromkeys([*numbers, *counted])]
    duckdb = _duckdb()
    con = duckdb.connect()
    try:
        parts: list[str] = []
        params: list[Any] = []
        if files:
            source = "read_parquet(?, union_by_name = true, hive_partitioning = false)"
            paths = [str(f) for f in files]
            present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}", [paths]).fetchall()}
            conditions, values = [], []
            for sql, value in (("service = ?", service), ("ts >= ?", since), ("ts < ?", until)):
                if value is not None:
                    conditions.append(sql)
                    values.append(value)
            where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
            parts.append(f"SELECT {_columns(wanted, present, numbers)} FROM {source}{where}")
            params += [paths, *values]
        if tail_table.num_rows:
            con.register("store_tail", tail_table)  # iter_log chose the service and times already
            parts.append(f"SELECT {_columns(wanted, set(tail_table.column_names), numbers)} FROM store_tail")
        if not parts:
            return WindowColumns(0, None, None)
        rows = "(" + " UNION ALL ".join(parts) + ")"
        return _summarise(con, rows, params, list(numbers), list(counted))
    finally:
        con.close()


def _columns(wanted: list[str], present: set[str], numbers: Sequence[str]) -> str:
    picked = []
    for name in wanted:
        kind = "DOUBLE" if name in numbers or name == "ts" else None
        if name in present:
            picked.append(f"CAST({_quote(name)} AS DOUBLE) AS {_quote(name)}" if kind else _quote(name))
        else:  # a field added since these files were written: null in them
            picked.append(f"NULL{'::' + kind if kind else ''} AS {_quote(name)}")
    return ", ".join(picked)


def _summarise(con: Any, rows: str, params: list[Any], numbers: list[str], counted: list[str]) -> WindowColumns:
    flags = "".join(f", GROUPING({_quote(c)})" for c in counted)
    keys = "".join(f", {_quote(c)}" for c in counted)
    sets = ", ".join(["()", *(f"({_quote(c)})" for c in counted)])
    query = (
        f"SELECT count(*) FILTER (WHERE {KEPT}), count(*), count(*) FILTER (WHERE status = 200), "
        f"min(ts) FILTER (WHERE {KEPT}), max(ts) FILTER (WHERE {KEPT}){flags}{keys} "
        f"FROM {rows} GROUP BY GROUPING SETS ({sets})"
    )
    result = WindowColumns(0, None, None, counts={c: [] for c in counted})
    k = len(counted)
    for row in con.execute(query, params).fetchall():
        kept, total, ok, first, last = row[:5]
        grouped = [i for i, flag in enumerate(row[5 : 5 + k]) if flag == 0]
        if not grouped:  # the () set: the whole window
            result.n_rows, result.first_ts, result.last_ts = kept, first, last
            for reason, n in (("status other than 200", total - ok), ("inputs or outputs not valid JSON", ok - kept)):
                if n:
                    result.excluded[reason] = n
        elif kept:
            result.counts[counted[grouped[0]]].append((row[5 + k + grouped[0]], kept))
    if numbers and result.n_rows:
        picked = ", ".join(_quote(c) for c in numbers)
        relation = con.sql(f"SELECT {picked} FROM {rows} WHERE {KEPT}", params=params)
        table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.fetch_arrow_table()
        import numpy as np

        for name in numbers:
            column = table.column(name)
            values = column.to_numpy() if column.null_count == 0 else column.fill_null(np.nan).to_numpy()
            result.numbers[name] = values.astype(np.float64, copy=False)
    elif numbers:
        import numpy as np

        result.numbers = {name: np.empty(0) for name in numbers}
    return result
