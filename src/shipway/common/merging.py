"""Field-by-field merge of dataclass instances: the summaries of parts into the summary of the whole.

    def merge(self, other: WindowSummary) -> WindowSummary:
        return merge_fields(self, other, first_ts=least(self.first_ts, other.first_ts))

Each field of the result is its two values combined (`combine`), unless the caller gives it:

- None gives way to the other value (a part that saw nothing of it);
- numbers and numpy arrays add (counts, sums, histograms), Counters add;
- dicts merge key by key, a key in both combined the same way; lists join;
- an object with a `merge` method merges (a nested summary);
- anything else (names, versions, flags) must be equal in both, and is kept.

It imports nothing of shipway, so every layer may use it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from numbers import Number
from typing import Any, TypeVar

__all__ = ["combine", "greatest", "least", "merge_fields"]

T = TypeVar("T")
N = TypeVar("N", int, float)


def merge_fields(a: T, b: T, /, **given: Any) -> T:
    """A new instance of `a`'s dataclass whose fields are `a`'s and `b`'s combined, or as `given`
    by name (a field whose merge reads other fields, or keeps one side's value)."""
    if not is_dataclass(a) or isinstance(a, type) or type(b) is not type(a):
        raise TypeError(
            f"merge_fields merges two instances of one dataclass, not {type(a).__name__} and {type(b).__name__}"
        )
    names = {f.name for f in fields(a) if f.init}
    unknown = sorted(set(given) - names)
    if unknown:
        raise TypeError(
            f"{type(a).__name__} has no field {unknown[0]!r} to give; its fields: {', '.join(sorted(names))}"
        )
    values = {}
    for name in (f.name for f in fields(a) if f.init):
        if name in given:
            values[name] = given[name]
            continue
        try:
            values[name] = combine(getattr(a, name), getattr(b, name))
        except ValueError as err:
            raise ValueError(f"cannot merge {type(a).__name__}.{name}: {err}") from None
    return type(a)(**values)


def combine(x: Any, y: Any) -> Any:
    """Two parts' values of one field as one (see the module's docstring for the rules)."""
    if x is None:
        return y
    if y is None:
        return x
    if isinstance(x, Counter) and isinstance(y, Counter):
        return x + y
    if isinstance(x, Mapping) and isinstance(y, Mapping):
        return {key: combine(x[key], y[key]) if key in x and key in y else x.get(key, y.get(key)) for key in {**x, **y}}
    merge = getattr(x, "merge", None)
    if callable(merge) and type(y) is type(x):
        return merge(y)
    if _adds(x) and _adds(y):
        return x + y
    if isinstance(x, list) and isinstance(y, list):
        return [*x, *y]
    if x != y:
        raise ValueError(f"{x!r} and {y!r} differ and do not add; give the merged value by name")
    return x


def least(a: N | None, b: N | None) -> N | None:
    """The smaller of two values either of which may be None (a part with no rows has no first time)."""
    return b if a is None else a if b is None else min(a, b)


def greatest(a: N | None, b: N | None) -> N | None:
    """The larger of two values either of which may be None."""
    return b if a is None else a if b is None else max(a, b)


def _adds(value: Any) -> bool:
    # Booleans are flags, not counts; numpy arrays (and anything else with numpy's arithmetic) add.
    return (isinstance(value, Number) and not isinstance(value, bool)) or hasattr(value, "__array_ufunc__")
