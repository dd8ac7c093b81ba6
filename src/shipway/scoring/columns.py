"""The output schema as typed Parquet columns.

Each field of the output object becomes one column of its own type (numbers, text, booleans,
lists and nested objects as Arrow lists and structs). A field whose JSON schema has no
single Arrow type (a union, a free-form dict) is kept as JSON text. An output that is not an
object is one column, `output`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

__all__ = ["DECISION", "OutputColumns", "decision_array"]

# The rules' decision, typed; `set` (the fields a rule overrode) varies in shape, so it is JSON.
DECISION = pa.struct(
    [
        ("queue", pa.string()),
        ("review", pa.bool_()),
        ("review_reason", pa.string()),
        ("fallback", pa.bool_()),
        ("set", pa.string()),
        ("fired", pa.list_(pa.string())),
        ("errors", pa.list_(pa.string())),
    ]
)


def decision_array(decisions: list[Any]) -> pa.Array:
    """The `decision` column from one Decision object (rules/decision.py), JSON-ready dict or None
    a row: read an attribute at a time, with no dict per row."""
    if any(isinstance(d, dict) for d in decisions):
        return pa.array([None if d is None else _decision_dict(d) for d in decisions], DECISION)
    columns = [
        [None if d is None else d.queue for d in decisions],
        [None if d is None else d.review for d in decisions],
        [None if d is None else d.review_reason for d in decisions],
        [None if d is None else d.fallback for d in decisions],
        [orjson.dumps(d.set).decode() if d is not None and d.set else None for d in decisions],
        [None if d is None else d.fired for d in decisions],
        [None if d is None else d.errors for d in decisions],
    ]
    arrays = [pa.array(column, field.type) for column, field in zip(columns, DECISION, strict=True)]
    mask = pa.array([d is None for d in decisions]) if any(d is None for d in decisions) else None
    return pa.StructArray.from_arrays(arrays, fields=list(DECISION), mask=mask)


def _decision_dict(decision: Any) -> dict[str, Any]:
    if not isinstance(decision, dict):
        decision = decision.to_dict()
    return {**decision, "set": orjson.dumps(decision["set"]).decode() if decision.get("set") else None}


_SCALARS = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}


@dataclass(frozen=True)
class OutputColumns:
    """How outputs become columns: the names, their Arrow types, and which hold JSON text."""

    names: tuple[str, ...]
    types: tuple[pa.DataType, ...]
    as_json: frozenset[str]
    whole: bool  # the output is not an object: one column, `output`

    @classmethod
    def from_json_schema(cls, schema: dict[str, Any]) -> OutputColumns:
        defs = schema.get("$defs", {})
        root = _resolve(schema, defs)
        props = root.get("properties") if root.get("type") == "object" else None
        if not props:
            kind = _arrow(root, defs)
            return cls(("output",), (kind or pa.string(),), frozenset() if kind else frozenset({"output"}), True)
        names, types, as_json = [], [], set()
        for name, sub in props.items():
            kind = _arrow(sub, defs)
            names.append(name)
            types.append(kind or pa.string())
            if kind is None:
                as_json.add(name)
        return cls(tuple(names), tuple(types), frozenset(as_json), False)

    def fields(self) -> list[pa.Field]:
        return [pa.field(n, t) for n, t in zip(self.names, self.types, strict=True)]

    def arrays(self, outputs: list[Any]) -> list[pa.Array]:
        """One array per column from JSON-ready outputs (None for a failed row)."""
        if self.whole:
            values = [_text(v) if self.as_json else v for v in outputs]
            return [pa.array(values, self.types[0])]
        arrays = []
        for name, kind in zip(self.names, self.types, strict=True):
            column = [None if o is None else o.get(name) for o in outputs]
            if name in self.as_json:
                column = [_text(v) for v in column]
            arrays.append(pa.array(column, kind))
        return arrays


def _text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(defs.get(ref.rsplit("/", 1)[1], {}), defs)
    return schema


def _arrow(schema: dict[str, Any], defs: dict[str, Any]) -> pa.DataType | None:
    """The Arrow type of a JSON schema, or None when it has no single one."""
    schema = _resolve(schema, defs)
    options = schema.get("anyOf")
    if isinstance(options, list):
        present = [o for o in options if o.get("type") != "null"]
        return _arrow(present[0], defs) if len(present) == 1 else None
    kind = schema.get("type")
    if "enum" in schema and kind is None:
        values = schema["enum"]
        kind = "string" if all(isinstance(v, str) for v in values) else None
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        item = _arrow(schema.get("items", {}), defs)
        return pa.list_(item) if item is not None else None
    if kind == "object" and schema.get("properties") and not schema.get("additionalProperties"):
        fields = []
        for name, sub in schema["properties"].items():
            sub_type = _arrow(sub, defs)
            if sub_type is None:
                return None
            fields.append(pa.field(name, sub_type))
        return pa.struct(fields)
    return None
