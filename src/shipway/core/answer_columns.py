"""A batch's answers as columns: what a service's `predict_columns` returns, checked against the
output schema without an object per answer.

    def predict_columns(model, items: list[In]) -> dict[str, column]   # one column per output field

A column holds one value per input, in the inputs' order: a pyarrow array, a 1-D numpy array or
a list. A list field may also be a 2-D numpy array (every row's list as long), and a field that
is an object, or a list of objects, a mapping of its own fields' columns. `ColumnCheck.check`
converts each column to its field's Arrow type (core/output_columns.py), then checks the values
against the fields' constraints with pydantic's own validators, one call per constrained column.
A column of the wrong name, length or type is the service's mistake: an OutputError for the
batch, saying which and how to fix it. A value that breaks a constraint (a probability of 1.5,
a null where none is allowed) fails its row alone, with the message the row path gives for that
answer (its values validated as the output type).

An output type with a check the columns cannot run (a model validator, a custom `__init__` or
`__post_init__`, an alias, a field validator, a union) is still answered: `AnswerColumns.checked`
is False and the pipeline validates the rows' values one answer at a time.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic_core import SchemaValidator, ValidationError, core_schema

from shipway.core.schema import Schema
from shipway.errors import OutputError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# numpy and pyarrow (shipway[analysis]) are imported where the columns are made: a service that
# defines predict_columns runs them in batch scoring only, which needs them anyway.

__all__ = ["AnswerColumns", "ColumnCheck"]

# Leaves the columns check with pydantic's validators: they check a value and keep it as it is.
_LEAVES = frozenset({"str", "int", "float", "bool", "literal", "enum"})
# Keys of a leaf's schema that constrain nothing: without others, the Arrow type is the check.
_FREE = frozenset({"type", "metadata", "ref", "strict"})
# Leaves whose constraints are bounds alone, checked by comparing the column (a NaN fails a bound,
# as in pydantic); any other constraint goes to pydantic's validator.
_BOUNDED = {
    "int": frozenset({"ge", "gt", "le", "lt"}),
    "float": frozenset({"ge", "gt", "le", "lt"}),
    "str": frozenset({"min_length", "max_length"}),
}
_COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}  # elementwise on arrays


class AnswerColumns:
    """A batch's answers, column by column (see the module). `bad` holds the rows whose values
    break the output type's constraints; `checked` is False where the type has checks the
    columns cannot run (every row is then validated as an answer)."""

    __slots__ = ("bad", "checked", "n", "schema", "struct")

    def __init__(self, struct: pa.StructArray, schema: Schema, bad: frozenset[int], checked: bool) -> None:
        self.struct = struct
        self.schema = schema
        self.bad = bad
        self.checked = checked
        self.n = len(struct)

    def __len__(self) -> int:
        return self.n

    @property
    def arrays(self) -> list[pa.Array]:
        """The columns, in the output type's field order, typed as the output's columns."""
        return self.struct.flatten()  # type: ignore[no-any-return]

    def column(self, name: str) -> pa.Array | None:
        """One field's column; None if the output has no such field."""
        index = self.struct.type.get_field_index(name)
        return None if index < 0 else self.struct.field(index)

    def dicts(self, places: Sequence[int]) -> list[dict[str, Any]]:
        """The rows' values as plain dicts (nested objects as dicts)."""
        import pyarrow as pa

        return self.struct.take(pa.array(places, pa.int64())).to_pylist()  # type: ignore[no-any-return]

    def rows(self, places: Sequence[int]) -> list[Any]:
        """The rows' answers as the row path holds them: objects of the output type, made by the
        output schema from the rows' values; a row in `bad` keeps its dict (the output schema's
        check then fails it with the row path's message)."""
        values = self.dicts(places)
        good = [j for j, i in enumerate(places) if i not in self.bad]
        for j, answer in zip(good, self.schema.validate_many([values[j] for j in good]), strict=True):
            values[j] = answer
        return values


class ColumnCheck:
    """How one output schema checks a batch's column answers. Built once per pipeline."""

    def __init__(self, schema: Schema) -> None:
        import pyarrow as pa

        from shipway.core.output_columns import OutputColumns, as_is

        self.schema = schema
        self.columns = OutputColumns.from_json_schema(schema.json_schema())
        self.type = pa.struct(self.columns.fields())
        self.plain = as_is(schema.adapter.core_schema)  # False: the rows are validated one by one
        self._validators: dict[int, SchemaValidator] = {}
        self._definitions: dict[str, Any] = {}

    def check(self, columns: Any, n: int) -> AnswerColumns:
        """`columns` (what predict_columns returned for `n` inputs) as checked AnswerColumns."""
        import numpy as np

        name = self.schema.name
        if self.columns.whole or self.columns.as_json:
            fields = ", ".join(sorted(self.columns.as_json)) or "output"
            raise OutputError(
                f"predict_columns cannot answer {name}: {fields} has no single column type (an output "
                f"that is not an object, a union or a free-form dict). Give each field of {name} one "
                f"type, or remove predict_columns (predict_batch then answers)."
            )
        if not isinstance(columns, Mapping):
            raise OutputError(
                f"predict_columns returned {type(columns).__name__}; it must return a mapping of each field "
                f"of {name} to its column, one value per input: {{{', '.join(repr(f) for f in self.columns.names)}: "
                f"...}}."
            )
        struct = _arrow(columns, self.type, n, name, "")
        bad: set[int] = set()
        checked = self.plain
        if checked:
            try:
                self._walk(self.schema.adapter.core_schema, struct, np.arange(n), bad)
            except _Unchecked:
                checked = False
                bad = set()
        return AnswerColumns(struct, self.schema, frozenset(bad), checked)

    def _walk(self, node: Mapping[str, Any], array: pa.Array, rows: np.ndarray, bad: set[int]) -> None:
        """Check `array` against the core schema `node`, adding the rows (`rows`: each value's
        row) whose values fail to `bad`. _Unchecked where a check cannot run over columns."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = node.get("type")
        if kind == "definitions":
            for definition in node.get("definitions", ()):
                self._definitions[definition["ref"]] = definition
            return self._walk(node["schema"], array, rows, bad)
        if kind == "definition-ref":
            target = self._definitions.get(node["schema_ref"])
            if target is None:
                raise _Unchecked
            return self._walk(target, array, rows, bad)
        if kind == "default":
            return self._walk(node["schema"], array, rows, bad)
        if array.null_count:
            present = pc.is_valid(array).to_numpy(zero_copy_only=False)
            if kind != "nullable":
                bad.update(rows[~present].tolist())
            array, rows = array.filter(pa.array(present)), rows[present]
        if kind == "nullable":
            return self._walk(node["schema"], array, rows, bad)
        if kind == "model":
            if node.get("custom_init") or node.get("post_init") or node.get("root_model"):
                raise _Unchecked
            return self._walk(node["schema"], array, rows, bad)
        if kind == "dataclass":
            if node.get("post_init"):
                raise _Unchecked
            return self._walk(node["schema"], array, rows, bad)
        if kind in ("model-fields", "typed-dict", "dataclass-args"):
            fields = node["fields"]
            named = fields.items() if isinstance(fields, Mapping) else ((f["name"], f) for f in fields)
            children = dict(zip(array.type.names, array.flatten(), strict=True))
            for field_name, field in named:
                if field.get("validation_alias") or field.get("init_only") or field_name not in children:
                    raise _Unchecked
                self._walk(field["schema"], children[field_name], rows, bad)
            return None
        if kind == "list":
            lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
            least, most = node.get("min_length"), node.get("max_length")
            if least is not None or most is not None:
                short = (lengths < (least or 0)) | (lengths > (most if most is not None else np.inf))
                bad.update(rows[short].tolist())
            return self._walk(node["items_schema"], array.flatten(), np.repeat(rows, lengths), bad)
        if kind not in _LEAVES or (
            kind == "str" and any(node.get(k) for k in ("strip_whitespace", "to_lower", "to_upper"))
        ):
            raise _Unchecked  # a validator that may change the value, or a type the columns do not hold
        limits = set(node) - _FREE
        if kind in _BOUNDED and limits <= _BOUNDED[kind]:  # bounds alone: compared over the column
            values = (pc.utf8_length(array) if kind == "str" else array).to_numpy(zero_copy_only=False)
            within = np.ones(len(values), dtype=bool)
            bounds: tuple[tuple[str, Any], ...]
            if kind == "str":  # lengths in code points, as pydantic counts them
                bounds = (("ge", node.get("min_length")), ("le", node.get("max_length")))
            else:
                bounds = tuple((key, node.get(key)) for key in ("ge", "gt", "le", "lt"))
            for key, bound in bounds:
                if bound is not None:
                    within &= _COMPARE[key](values, bound)
            if not within.all():
                bad.update(rows[~within].tolist())
            return None
        if kind in ("literal", "enum") or limits:
            validator = self._validators.get(id(node))
            if validator is None:
                validator = self._validators[id(node)] = SchemaValidator(core_schema.list_schema(node))  # type: ignore[arg-type]
            try:
                validator.validate_python(array.to_pylist())
            except ValidationError as err:
                failed = {e["loc"][0] for e in err.errors(include_url=False) if e["loc"]}
                bad.update(rows[sorted(failed)].tolist())
        return None


class _Unchecked(Exception):
    """A check of the output type that the columns cannot run."""


def _arrow(value: Any, kind: pa.DataType, n: int, name: str, path: str) -> pa.Array:
    """A service's column as an Arrow array of `kind` with `n` values, or an OutputError that
    names the column (`path`) and what is wrong with it."""
    import numpy as np
    import pyarrow as pa

    where = f"the column {path!r}" if path else "the answer"
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, Mapping):
        value = _from_mapping(value, kind, n, name, path)
    elif isinstance(value, np.ndarray) and value.ndim == 2 and pa.types.is_list(kind):
        rows, width = value.shape
        _length(rows, n, name, path)
        offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
        value = pa.ListArray.from_arrays(offsets, _arrow(value.reshape(-1), kind.value_type, rows * width, name, path))
    elif isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise OutputError(
                f"predict_columns returned {where} of {name} as an array of shape {value.shape}; a column is "
                f"one-dimensional, one value per input (a 2-D array only for a list field)."
            )
        value = _built(lambda: pa.array(value), kind, name, path)
    elif not isinstance(value, pa.Array):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise OutputError(
                f"predict_columns returned {where} of {name} as {type(value).__name__}; a column is a "
                f"list, a numpy array or a pyarrow array of one value per input."
            )
        value = _built(lambda: pa.array(list(value), kind), kind, name, path)
    _length(len(value), n, name, path)
    if value.type != kind:
        value = _built(lambda: value.cast(kind, safe=True), kind, name, path, value.type)
    return value


def _from_mapping(value: Mapping[str, Any], kind: pa.DataType, n: int, name: str, path: str) -> pa.Array:
    """An object field's (or a list of objects') column from a mapping of its fields' columns."""
    import pyarrow as pa

    listed = pa.types.is_list(kind) and pa.types.is_struct(kind.value_type)
    struct = kind.value_type if listed else kind
    if not pa.types.is_struct(struct):
        raise OutputError(
            f"predict_columns returned the column {path!r} of {name} as a mapping, but the field holds "
            f"{kind}, not objects; return its values as a list or an array."
        )
    missing = [f.name for f in struct if f.name not in value]
    extra = sorted(set(value) - set(struct.names))
    if missing or extra:
        owner = f"{path!r} of {name}" if path else name
        problems = [f"no column for the field(s) {', '.join(map(repr, missing))} of {owner}"] if missing else []
        if extra:
            problems.append(f"the column(s) {', '.join(map(repr, extra))}, which {owner} has no field for")
        raise OutputError(
            f"predict_columns returned {' and '.join(problems)}; return one column for each field of "
            f"{owner}: {', '.join(struct.names)}."
        )
    dotted = f"{path}." if path else ""
    if not listed:
        children = [_arrow(value[f.name], f.type, n, name, dotted + f.name) for f in struct]
        return pa.StructArray.from_arrays(children, fields=list(struct))
    # A list of objects: each field a list column (a 2-D array), every row's lists as long.
    lists = [_arrow(value[f.name], pa.list_(f.type), n, name, dotted + f.name) for f in struct]
    offsets = lists[0].offsets
    for f, column in zip(struct, lists, strict=True):
        if column.null_count or not column.offsets.equals(offsets):
            raise OutputError(
                f"predict_columns returned lists of other lengths (or nulls) in {dotted + f.name!r} than in "
                f"{dotted + struct[0].name!r} of {name}; the fields of a list of objects must hold one value "
                f"per object, every row's lists equally long."
            )
    children = [column.flatten() for column in lists]
    return pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays(children, fields=list(struct)))


def _length(got: int, n: int, name: str, path: str) -> None:
    if got != n:
        raise OutputError(
            f"predict_columns returned {got} values in the column {path or 'of the answer'!r} of {name} for a "
            f"batch of {n} inputs; return one value per input, in the inputs' order."
        )


def _built(build: Any, kind: pa.DataType, name: str, path: str, got: pa.DataType | None = None) -> pa.Array:
    import pyarrow as pa

    try:
        return build()
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as err:
        held = f" holds {got} and" if got is not None else ""
        raise OutputError(
            f"predict_columns returned the column {path!r} of {name}, which{held} does not convert to the "
            f"field's type ({kind}): {err}. Return values of the type {name} declares for {path!r}."
        ) from None
