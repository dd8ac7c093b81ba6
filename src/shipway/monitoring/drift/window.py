"""A window of live traffic as columns, ready to compare with the reference profile.

Logged predictions hold the request item and the answer as JSON bytes. Each chunk of records
is parsed with one orjson call (its documents joined into one JSON array) and each column is
pulled out once per chunk, so no Python code runs per value beyond a dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Literal

import orjson

from shipway.errors import DriftError
from shipway.monitoring.drift._columns import (
    CategoryCounts,
    Path,
    UnreadNumbers,
    category_key,
    column,
    flatten_items,
    path_name,
)
from shipway.store.records import PredictionRecord

if TYPE_CHECKING:
    from shipway.monitoring.drift.profile import Profile
    from shipway.store.base import Store

__all__ = ["Window", "window_from_records", "window_from_store"]


@dataclass(slots=True)
class Window:
    """Live values by feature name (`amount`, `output.intent`), one entry per row."""

    columns: dict[str, Any]  # name -> list, numpy array, CategoryCounts or UnreadNumbers
    n_rows: int
    first_ts: float | None = None
    last_ts: float | None = None
    excluded: dict[str, int] = field(default_factory=dict)  # why rows were left out -> how many

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any]]) -> Window:
        """A window from columns by feature name; all of the same length."""
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise DriftError(f"the window's columns differ in length: {lengths}; pass one value per row in each.")
        return cls(dict(columns), next(iter(lengths.values()), 0))

    @classmethod
    def from_items(
        cls, inputs: Sequence[Any], outputs: Sequence[Any] | None = None, profile: Profile | None = None
    ) -> Window:
        """A window from the service's input items and (optionally) its output items, in order.

        With a profile only its features are read; without one every scalar field is.
        """
        builder = _Builder(profile)
        builder.add(list(inputs), None if outputs is None else list(outputs))
        return builder.window()

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "first_ts": self.first_ts, "last_ts": self.last_ts, "excluded": self.excluded}


def window_from_records(records: Iterable[PredictionRecord], profile: Profile | None = None) -> Window:
    """The window of logged predictions: successful ones (status 200) only, since a failed request
    has no answer and its input was refused. Pass the profile to read only its features."""
    builder = _Builder(profile)
    chunk: list[PredictionRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= 10_000:
            builder.add_records(chunk)
            chunk = []
    builder.add_records(chunk)
    return builder.window()


def window_from_store(
    store: Store,
    *,
    service: str | None = None,
    since: float | None = None,
    until: float | None = None,
    profile: Profile | None = None,
    export: FilePath | None = None,
) -> Window:
    """The window of predictions logged with `since <= ts < until` (unix seconds).

    With `export` (the Parquet export's folder, docs/analysis.md) and a profile, the window is
    read from the export's typed columns when it covers the window, with what the store logged
    since the last export; otherwise it is streamed from the store and its JSON decoded here.
    """
    if export is not None and profile is not None:
        window = _window_from_export(store, export, service, since, until, profile)
        if window is not None:
            return window
    return window_from_records(store.iter_predictions(service=service, since=since, until=until), profile)


def _window_from_export(
    store: Store, export: FilePath, service: str | None, since: float | None, until: float | None, profile: Profile
) -> Window | None:
    """The window from the export's columns: a typed column where the export has one for a
    feature, the feature read from the logged JSON documents otherwise."""
    from shipway.store.columnar import read_log

    fields = _export_fields(export)
    counted = _counted_window(store, export, service, since, until, profile, fields)
    if counted is not False:
        return counted
    typed = {(f.role, f.path): f.column for f in fields}
    wanted = ["ts", "status", "documents_ok"]
    plan: list[tuple[str, str | None, str, Path]] = []  # feature, typed column, role, path
    for f in profile.features:
        name = typed.get((f.role, f.path))
        plan.append((f.name, name, f.role, f.path))
        wanted.append(name if name is not None else ("inputs" if f.role == "input" else "outputs"))
    # Only the text checks sample rows (their order matters); the others count and sort values.
    ordered = any(f.kind == "text" for f in profile.features)
    table = read_log(
        store, export, service=service, since=since, until=until, columns=list(dict.fromkeys(wanted)), ordered=ordered
    )
    if table is None:
        return None
    import pyarrow.compute as pc

    status_ok = pc.equal(table.column("status"), 200)
    kept = pc.and_(status_ok, pc.fill_null(table.column("documents_ok"), False))
    excluded: dict[str, int] = {}
    n_status = table.num_rows - pc.sum(status_ok).as_py() if table.num_rows else 0
    n_json = pc.sum(status_ok).as_py() - pc.sum(kept).as_py() if table.num_rows else 0
    for reason, n in (("status other than 200", n_status), ("inputs or outputs not valid JSON", n_json)):
        if n:
            excluded[reason] = n
    if n_status or n_json:
        table = table.filter(kept)
    columns: dict[str, Any] = {}
    decoded: dict[str, list[Any]] = {}
    kinds = {f.name: f.kind for f in profile.features}
    for feature, name, role, path in plan:
        if name is not None:
            columns[feature] = _typed_values(table.column(name), kinds[feature])
            continue
        docs = "inputs" if role == "input" else "outputs"
        if docs not in decoded:
            decoded[docs] = orjson.loads("[" + ",".join(table.column(docs).to_pylist()) + "]")
        columns[feature] = column(decoded[docs], path)
    ts = table.column("ts")
    first = pc.min(ts).as_py() if table.num_rows else None
    last = pc.max(ts).as_py() if table.num_rows else None
    return Window(columns, table.num_rows, first, last, excluded)


# The export's column kinds that a feature's statistics can read from counts and arrays alone.
_COUNTABLE = {"numeric": ("int", "float"), "categorical": ("str", "int")}


def _counted_window(
    store: Store,
    export: FilePath,
    service: str | None,
    since: float | None,
    until: float | None,
    profile: Profile,
    fields: list[Any],
) -> Window | Literal[False] | None:
    """The window when every feature has a numeric or categorical typed column: numbers read as
    arrays when a check needs them and categories counted by DuckDB (store/log_window.py), no
    row built. False when some
    feature needs its rows (text, or a field the export keeps as JSON): the caller reads rows."""
    typed = {(f.role, f.path): f for f in fields}
    numbers: dict[str, str] = {}  # feature -> column
    counted: dict[str, str] = {}
    for f in profile.features:
        column = typed.get((f.role, f.path))
        if column is None or column.kind not in _COUNTABLE.get(f.kind, ()):
            return False
        (numbers if f.kind == "numeric" else counted)[f.name] = column.column
    from shipway.store.log_window import read_window

    read = read_window(
        store,
        export,
        service=service,
        since=since,
        until=until,
        numbers=list(numbers.values()),
        counted=list(counted.values()),
    )
    if read is None:
        return None
    # Each numeric column is read when its check runs (compare's threads), not here.
    columns: dict[str, Any] = {
        name: UnreadNumbers(read.numbers, column, read.n_rows) for name, column in numbers.items()
    }
    for name, column in counted.items():
        counts: dict[str, int] = {}
        missing = 0
        for value, n in read.counts[column]:
            if value is None:
                missing += n
            else:
                key = category_key(value)
                counts[key] = counts.get(key, 0) + n
        columns[name] = CategoryCounts(counts, missing)
    return Window(columns, read.n_rows, read.first_ts, read.last_ts, read.excluded)


def _typed_values(data: Any, kind: str) -> Any:
    """A typed column as the drift checks take it: numbers as a float array (NaN for null),
    categories counted by Arrow (as `category_key` names them), other values as a list."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "numeric" and (pa.types.is_floating(data.type) or pa.types.is_integer(data.type)):
        return data.to_numpy(zero_copy_only=False).astype("float64", copy=False)
    if kind == "categorical" and (pa.types.is_string(data.type) or pa.types.is_integer(data.type)):
        counted = pc.value_counts(data)  # in order of first appearance, as Counter counts
        counts: dict[str, int] = {}
        for value, n in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True):
            if value is not None:
                counts[category_key(value)] = n
        return CategoryCounts(counts, data.null_count)
    return data.to_pylist()


def _export_fields(export: FilePath) -> list[Any]:
    from shipway.store.columnar import read_state

    state = read_state(export)
    return list(state.schema.fields) if state is not None else []


class _Builder:
    """Collects columns chunk by chunk."""

    def __init__(self, profile: Profile | None) -> None:
        self.fixed: list[tuple[str, str, Path]] | None = None
        if profile is not None:
            self.fixed = [(f.name, f.role, f.path) for f in profile.features]
        self.columns: dict[str, list[Any]] = {}
        self.n_rows = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.excluded: dict[str, int] = {}

    def skip(self, reason: str, n: int) -> None:
        if n:
            self.excluded[reason] = self.excluded.get(reason, 0) + n

    def add_records(self, records: list[PredictionRecord]) -> None:
        if not records:
            return
        ok = [r for r in records if r.status == 200]
        self.skip("status other than 200", len(records) - len(ok))
        kept, inputs, outputs = _parse(ok)
        self.skip("inputs or outputs not valid JSON", len(ok) - len(kept))
        if kept:
            ts = [r.ts for r in kept]
            lo, hi = min(ts), max(ts)
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        self.add(inputs, outputs)

    def add(self, inputs: list[Any], outputs: list[Any] | None) -> None:
        if outputs is not None and len(outputs) != len(inputs):
            raise DriftError(
                f"the window got {len(inputs)} inputs but {len(outputs)} outputs; pass one of each per row."
            )
        parts = [("input", inputs)] + ([("output", outputs)] if outputs is not None else [])
        for role, items in parts:
            if self.fixed is not None:
                wanted = [(name, path) for name, r, path in self.fixed if r == role]
            else:
                wanted = [(path_name(p, role), p) for p in flatten_items(items)[0]]
            for name, path in wanted:
                values = self.columns.get(name)
                if values is None:
                    values = self.columns[name] = [None] * self.n_rows  # absent from earlier chunks
                values.extend(column(items, path))
        self.n_rows += len(inputs)
        for values in self.columns.values():
            if len(values) < self.n_rows:  # absent from this chunk
                values.extend([None] * (self.n_rows - len(values)))

    def window(self) -> Window:
        return Window(dict(self.columns), self.n_rows, self.first_ts, self.last_ts, self.excluded)


def _parse(records: list[PredictionRecord]) -> tuple[list[PredictionRecord], list[Any], list[Any]]:
    """The records whose inputs and outputs parse, with those parsed inputs and outputs."""
    try:
        inputs = orjson.loads(b"[" + b",".join(r.inputs for r in records) + b"]")
        outputs = orjson.loads(b"[" + b",".join(r.outputs for r in records) + b"]")
        if len(inputs) == len(outputs) == len(records):
            return records, inputs, outputs
    except orjson.JSONDecodeError:
        pass
    # Some document is damaged (or one held several values): parse one at a time, skip the bad.
    kept, inputs, outputs = [], [], []
    for r in records:
        try:
            item, answer = orjson.loads(r.inputs), orjson.loads(r.outputs)
        except orjson.JSONDecodeError:
            continue
        kept.append(r)
        inputs.append(item)
        outputs.append(answer)
    return kept, inputs, outputs
