"""The exported log's columns: its fields typed from the service's schemas, and entries as Arrow tables.

A top-level field of the input or output JSON schema becomes a column (`input.amount`,
`output.intent`): integer, number, string and boolean ones typed, the others JSON text.
Documents are parsed by Arrow's JSON reader where it gives exactly what orjson gives, and by
orjson otherwise. pyarrow is imported here and in store/columnar.py only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from shipway.errors import ExportError
from shipway.store.records import LogColumns

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Field", "LogSchema", "need_arrow", "to_table"]

_KINDS = ("int", "float", "str", "bool", "json")
_OK_TYPES: dict[str, frozenset[type]] = {
    "int": frozenset({int}),
    "float": frozenset({int, float}),
    "str": frozenset({str}),
    "bool": frozenset({bool}),
}
_JSON_TYPES = {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}


def need_arrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise ExportError(
            f"the Parquet export needs pyarrow, which is not installed ({exc}); "
            "install it with pip install 'shipway[analysis]'"
        ) from exc
    return pyarrow, pyarrow.parquet


@dataclass(frozen=True, slots=True)
class Field:
    """A typed column: the value at `path` of the logged input or output item."""

    role: str  # "input" or "output"
    path: tuple[str, ...]  # () for a bare scalar item
    kind: str  # int, float, str, bool; json: nested or unknown, kept as JSON text

    @property
    def column(self) -> str:
        return ".".join((self.role, *self.path))


@dataclass(frozen=True, slots=True)
class LogSchema:
    """The typed columns of the export, derived from the service's input and output JSON schemas."""

    fields: tuple[Field, ...] = ()

    @classmethod
    def from_json_schemas(
        cls, input_schema: Mapping[str, Any] | None, output_schema: Mapping[str, Any] | None
    ) -> LogSchema:
        """Top-level properties become columns: integer, number, string and boolean ones typed,
        the others (objects, lists, unions) JSON text. A bare scalar item is one column."""
        fields: list[Field] = []
        for role, schema in (("input", input_schema), ("output", output_schema)):
            if not schema:
                continue
            defs = schema.get("$defs", {})
            top = _resolve(schema, defs)
            if top.get("type") == "object" and isinstance(top.get("properties"), dict):
                fields += [Field(role, (str(name),), _kind(prop, defs)) for name, prop in top["properties"].items()]
            elif (kind := _kind(top, defs)) != "json":
                fields.append(Field(role, (), kind))
        return cls(tuple(fields))

    def to_dict(self) -> list[dict[str, Any]]:
        return [{"role": f.role, "path": list(f.path), "kind": f.kind} for f in self.fields]

    @classmethod
    def from_dict(cls, data: Sequence[Mapping[str, Any]]) -> LogSchema:
        return cls(tuple(Field(d["role"], tuple(d["path"]), d["kind"]) for d in data if d["kind"] in _KINDS))


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return defs.get(ref.rsplit("/", 1)[1], {})
    return schema


def _kind(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    schema = _resolve(schema, defs)
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        present = [o for o in options if _resolve(o, defs).get("type") != "null"]
        return _kind(present[0], defs) if len(present) == 1 else "json"
    if "enum" in schema and "type" not in schema:
        values = schema["enum"]
        return "str" if values and all(isinstance(v, str) for v in values) else "json"
    kind = schema.get("type")
    return _JSON_TYPES.get(kind, "json") if isinstance(kind, str) else "json"


def to_table(groups: Sequence[LogColumns], schema: LogSchema) -> pa.Table:
    """The entries of `groups` as one Arrow table of BASE_COLUMNS and the schema's typed columns."""
    pa, _ = need_arrow()
    request_ids: list[str] = []
    times: list[float] = []
    latencies: list[float] = []
    statuses: list[int] = []
    inputs: list[str] = []
    outputs: list[str] = []
    decisions: list[str | None] = []
    shadows: list[str | None] = []
    for g in groups:
        request_ids += g.request_ids
        times += g.times
        latencies += g.latencies
        statuses += g.statuses
        inputs += g.inputs
        outputs += g.outputs
        decisions += g.decisions
        shadows += g.shadows
    context = _context_columns(pa, groups)
    text = pa.string()
    documents = {"input": pa.array(inputs, text), "output": pa.array(outputs, text)}
    fast = {
        role: _typed_fast(pa, docs, [f for f in schema.fields if f.role == role]) for role, docs in documents.items()
    }
    if all(v is not None for v in fast.values()):
        ok, items = [True] * len(inputs), dict[str, list[Any]]()
    else:
        ok, items = _parse(inputs, outputs)
    arrays: dict[str, Any] = {
        "request_id": pa.array(request_ids, text),
        "ts": pa.array(times, pa.float64()),
        "service": context[0],
        "model_version": context[1],
        "rules_version": context[2],
        "dataset_version": context[3],
        "run_id": context[4],
        "latency_ms": pa.array(latencies, pa.float64()),
        "status": pa.array(statuses, pa.int32()),
        "decision": pa.array(decisions, text),
        "shadow": pa.array(shadows, text),
        "inputs": documents["input"],
        "outputs": documents["output"],
        "documents_ok": pa.array(ok, pa.bool_()),
        "mode": context[5],
    }
    for field in schema.fields:
        typed = fast[field.role]
        if typed is not None and items == {}:
            arrays[field.column] = typed[field.column]
        else:
            arrays[field.column] = _array(pa, _values(items[field.role], field.path), field.kind)
    return pa.table(arrays)


def _context_columns(pa: Any, groups: Sequence[LogColumns]) -> list[Any]:
    """The six context columns (service ... mode): each group's value repeated over its entries,
    by one `take` in C rather than a Python string per entry."""
    import numpy as np

    index = pa.array(np.repeat(np.arange(len(groups)), [len(g) for g in groups]))
    return [pa.array([g.context[k] for g in groups], pa.string()).take(index) for k in range(6)]


def _typed_fast(pa: Any, docs: Any, fields: list[Field]) -> dict[str, Any] | None:
    """The typed columns of one role's documents (an Arrow string array) parsed by Arrow's JSON
    reader (in C++, about ten times faster than parsing in Python), or None where it cannot give
    exactly what the Python path gives: a field kept as JSON text, a value of another type, a
    document that is not a JSON object."""
    if any(f.kind == "json" or len(f.path) != 1 for f in fields):
        return None
    types = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}
    if not len(docs):
        return {f.column: pa.array([], types[f.kind]) for f in fields}
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.json as pj

    options = pj.ParseOptions(
        explicit_schema=pa.schema([(f.path[0], types[f.kind]) for f in fields]), unexpected_field_behavior="ignore"
    )
    # The documents one a line, joined by Arrow without the GIL (a Python join and encode cost
    # 0.12 us a row per role, this 0.03; issue 20): the data buffer of each document plus "\n".
    lines = pc.binary_join_element_wise(docs, "", "\n")
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset : lines.offset + len(lines) + 1]
    block = lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    try:
        # Threads pay off on large blocks only; a continuous export's batches are small. A block
        # of the data's own size, not more: the reader's cost grows with its block (10,000 short
        # documents: 1.4 ms of CPU in a block of their size, 2.2 ms in one of 1 MiB).
        read = pj.ReadOptions(use_threads=block.size > 8 << 20, block_size=min(block.size + 1, 16 << 20))
        table = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(docs):
        return None
    return {f.column: table.column(f.path[0]).combine_chunks() for f in fields}


def _parse(inputs: list[str], outputs: list[str]) -> tuple[list[bool], dict[str, list[Any]]]:
    """Each row's documents parsed (None for a row where either is not JSON), one orjson call each."""
    try:
        parsed_in = orjson.loads("[" + ",".join(inputs) + "]")
        parsed_out = orjson.loads("[" + ",".join(outputs) + "]")
        if len(parsed_in) == len(parsed_out) == len(inputs):
            return [True] * len(inputs), {"input": parsed_in, "output": parsed_out}
    except orjson.JSONDecodeError:
        pass
    ok: list[bool] = []
    parsed_in, parsed_out = [], []
    for a, b in zip(inputs, outputs, strict=True):
        try:
            item, answer = orjson.loads(a), orjson.loads(b)
        except orjson.JSONDecodeError:
            item = answer = None
            ok.append(False)
        else:
            ok.append(True)
        parsed_in.append(item)
        parsed_out.append(answer)
    return ok, {"input": parsed_in, "output": parsed_out}


def _values(items: list[Any], path: tuple[str, ...]) -> list[Any]:
    if not path:
        return items
    key = path[0]
    try:
        return list(map(dict.get, items, [key] * len(items)))  # in C, for the common flat item
    except TypeError:
        return [item.get(key) if isinstance(item, dict) else None for item in items]


def _array(pa: Any, values: list[Any], kind: str) -> Any:
    """An Arrow array of one kind; a value of another JSON type is null (the raw document keeps it)."""
    if kind == "json":
        return pa.array([None if v is None else orjson.dumps(v).decode() for v in values], pa.string())
    ok = _OK_TYPES[kind]
    if not set(map(type, values)) <= ok | {type(None)}:
        values = [v if type(v) in ok else None for v in values]
    arrow_type = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}[kind]
    try:
        return pa.array(values, arrow_type)
    except (pa.ArrowInvalid, OverflowError):  # an integer beyond 64 bits
        return pa.array([v if kind != "int" or -(2**63) <= v < 2**63 else None for v in values], arrow_type)
