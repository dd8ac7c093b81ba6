"""The output schema as typed Arrow columns.

Each field of the output object becomes one column of its own type (numbers, text, booleans,
lists and nested objects as Arrow lists and structs). A field whose JSON schema has no
single Arrow type (a union, a free-form dict) is kept as JSON text. An output that is not an
object is one column, `output`. Batch scoring writes these columns; a service's column answers
(`predict_columns`, core/answer_columns.py) are checked against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["OutputColumns", "as_is"]


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

    def arrays_of(self, outputs: list[Any]) -> list[pa.Array] | None:
        """`arrays` from the outputs themselves (validated objects, None for a failed row), one
        column at a time with no dict per row: for an output type that serialises as it is
        (`as_is`). None where a value is not exactly what its column holds (an enum, a NaN, a
        number as text): the caller takes `arrays` of the dump, which knows those."""
        if self.as_json:
            return None
        present = [o for o in outputs if o is not None]
        mask = None if len(present) == len(outputs) else np.array([o is None for o in outputs])
        try:
            if self.whole:
                return [_spread(_build(present, self.types[0]), mask)]
            getter = (lambda name: lambda o: o.get(name)) if present and isinstance(present[0], Mapping) else attrgetter
            return [
                _spread(_build(list(map(getter(name), present)), kind), mask)
                for name, kind in zip(self.names, self.types, strict=True)
            ]
        except _NotAsIs:
            return None


class _NotAsIs(Exception):
    """A value its column does not hold as it is."""


_EXACT: dict[pa.DataType, frozenset[type]] = {
    pa.string(): frozenset({str}),
    pa.int64(): frozenset({int}),
    pa.float64(): frozenset({float, int}),
    pa.bool_(): frozenset({bool}),
}


def _build(values: list[Any], kind: pa.DataType) -> pa.Array:
    """An Arrow array of `kind` from values as the output objects hold them (see `arrays_of`)."""
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    exact = _EXACT.get(kind)
    if exact is not None:
        if not kinds <= exact:
            raise _NotAsIs
        try:
            array = pa.array(values, kind)
        except (OverflowError, pa.ArrowException):
            raise _NotAsIs from None
        if kind == pa.float64() and pc.all(pc.is_finite(array)).as_py() is False:
            raise _NotAsIs  # the dump writes NaN and infinities as null
        return array
    if pa.types.is_list(kind):
        if not kinds <= {list}:
            raise _NotAsIs
        lengths = np.fromiter(map(len, values) if not nulls else (0 if v is None else len(v) for v in values), np.int64)
        offsets = np.zeros(len(values) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        items = list(chain.from_iterable(v for v in values if v is not None))
        child = _build(items, kind.value_type)
        mask = pa.array([v is None for v in values]) if nulls else None
        return pa.ListArray.from_arrays(pa.array(offsets), child, mask=mask)
    if pa.types.is_struct(kind):
        if not values:
            return pa.array([], kind)
        dicts = kinds <= {dict}
        fields = list(kind)
        present = [v for v in values if v is not None] if nulls else values
        children = []
        for f in fields:
            try:
                column = [v.get(f.name) for v in present] if dicts else list(map(attrgetter(f.name), present))
            except AttributeError:  # a mapping or an object without the field
                raise _NotAsIs from None
            children.append(_build(column, f.type))
        array = pa.StructArray.from_arrays(children, fields=fields)
        return _spread(array, np.array([v is None for v in values]) if nulls else None)
    raise _NotAsIs


def _spread(array: pa.Array, mask: Any) -> pa.Array:
    """`array` (of the present rows) put in the places where `mask` is False, nulls elsewhere."""
    if mask is None:
        return array
    index = np.cumsum(~mask) - 1
    return array.take(pa.array(index, mask=mask))


def as_is(core_schema: Any) -> bool:
    """Whether a type serialises to JSON as its objects' own fields hold their values: no custom
    serializer, alias, exclusion or computed field anywhere in its pydantic core schema."""
    if isinstance(core_schema, Mapping):
        for key, value in core_schema.items():
            if key in ("serialization", "serialization_alias", "validation_alias", "serialization_exclude"):
                return False
            if key == "computed_fields" and value:
                return False
            if not as_is(value):
                return False
        return True
    if isinstance(core_schema, (list, tuple)):
        return all(as_is(item) for item in core_schema)
    return True


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
