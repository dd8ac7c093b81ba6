"""Batch scoring's columns beside the outputs': the rules' decision, typed.

The outputs' own columns are the output schema's (core/output_columns.py, re-exported here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from shipway.core.output_columns import OutputColumns, as_is

__all__ = ["DECISION", "OutputColumns", "as_is", "decision_array", "decision_columns", "not_finite"]

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


def decision_columns(decided: Any, n: int) -> pa.Array:
    """The `decision` column of `n` rows from the rules' column form (rules.live.DecidedColumns),
    without a Decision per row: its rows decided by the row path keep their own Decision; nulls
    where no rules are live."""
    d = decided.decisions
    if d is None:
        return pa.nulls(n, DECISION)
    queue = pa.array(decided.queues, pa.string()).take(pa.array(d.queue))
    reason = pa.array(list(d.reasons), pa.string()).take(pa.array(d.reason))
    fired = _fired(d.fired, n)
    empty = _no_lists(n)
    arrays = [queue, pa.array(d.review), reason, pa.array(d.fallback), pa.nulls(n, pa.string()), fired, empty]
    array = pa.StructArray.from_arrays(arrays, fields=list(DECISION))
    if not decided.rows:
        return array
    # The row path's rows: their own decisions, put in their places.
    rows = sorted(decided.rows)
    own = decision_array([decided.rows[i].decided for i in rows])
    index = np.arange(n)
    index[rows] = n + np.arange(len(rows))
    return pa.concat_arrays([array, own]).take(pa.array(index))


def not_finite(arrays: list[pa.Array], n: int) -> list[int]:
    """The rows (of `n`) with a NaN or an infinity anywhere in `arrays`, nested lists and structs
    included."""
    import pyarrow.compute as pc

    found = np.zeros(n, dtype=bool)

    def walk(array: pa.Array, rows: np.ndarray) -> None:
        kind = array.type
        if pa.types.is_floating(kind):
            odd = ~pc.is_finite(array).fill_null(True).to_numpy(zero_copy_only=False)
            if odd.any():
                found[rows[odd]] = True
        elif pa.types.is_list(kind):
            lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False)
            walk(array.flatten(), np.repeat(rows, lengths))
        elif pa.types.is_struct(kind):
            for child in array.flatten():
                walk(child, rows)

    for array in arrays:
        walk(array, np.arange(n))
    return np.flatnonzero(found).tolist()  # type: ignore[no-any-return]


def _no_lists(n: int) -> pa.Array:
    """`n` empty lists of strings."""
    return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string()))


def _fired(fired: tuple[tuple[str, Any], ...], n: int) -> pa.Array:
    """The rules that fired on each row, in the rules' order, as a list column."""
    if not fired:
        return _no_lists(n)
    matrix = np.stack([mask for _, mask in fired], axis=1)  # rows x rules
    _, rules = np.nonzero(matrix)  # row-major: each row's rules in order
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(matrix.sum(axis=1), out=offsets[1:])
    names = pa.array([name for name, _ in fired], pa.string()).take(pa.array(rules))
    return pa.ListArray.from_arrays(pa.array(offsets), names)


def _decision_dict(decision: Any) -> dict[str, Any]:
    if not isinstance(decision, dict):
        decision = decision.to_dict()
    return {**decision, "set": orjson.dumps(decision["set"]).decode() if decision.get("set") else None}
