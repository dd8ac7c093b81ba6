"""Items (JSON objects) to columns, and columns to the arrays the statistics need.

Both the reference profile (built from training items) and the live window (built from
logged predictions) go through these helpers, so a value is read the same way on both sides.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

__all__ = [
    "CategoryCounts",
    "Path",
    "UnreadNumbers",
    "category_key",
    "column",
    "count_categories",
    "flatten_items",
    "path_name",
    "to_float",
    "to_texts",
]

Path = tuple[str, ...]  # keys from the item's top level down to a scalar field


def path_name(path: Path, role: str) -> str:
    """The feature's name in reports and settings: `amount`, `customer.age`, `output.intent`."""
    dotted = ".".join(path)
    if role == "output":
        return f"output.{dotted}" if dotted else "output"
    return dotted


def _walk(value: Any, prefix: Path, out: dict[Path, None], lists: dict[Path, None]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _walk(inner, (*prefix, str(key)), out, lists)
    elif isinstance(value, list):
        lists[prefix] = None
    else:
        out[prefix] = None


def flatten_items(items: Iterable[Any]) -> tuple[list[Path], list[Path]]:
    """The scalar fields found in `items` (in order of first appearance), and the list fields.

    Nested objects become dotted paths; lists have no single value to compare and are skipped
    (returned second, so a profile can say what it left out). A bare scalar item is path `()`.
    """
    found: dict[Path, None] = {}
    lists: dict[Path, None] = {}
    shapes: set[tuple[tuple[Any, ...], tuple[type, ...]]] = set()
    for item in items:
        if isinstance(item, dict):
            # Logged items mostly share one shape: walk one item per shape (keys and value
            # types), except where a value is an object whose own keys may vary.
            shape = (tuple(item), tuple(map(type, item.values())))
            if shape in shapes and dict not in shape[1]:
                continue
            shapes.add(shape)
        _walk(item, (), found, lists)
    return list(found), [p for p in lists if p not in found]


def column(items: Sequence[Any], path: Path) -> list[Any]:
    """The values at `path` in each item; None where an item lacks it."""
    if not path:
        return [None if isinstance(x, (dict, list)) else x for x in items]
    if len(path) == 1:
        key = path[0]
        # map over dict.get runs in C: the window's hot path for flat items.
        try:
            return list(map(dict.get, items, [key] * len(items)))
        except TypeError:
            pass  # some item is not a dict
    out: list[Any] = []
    for item in items:
        value = item
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        out.append(value)
    return out


@dataclass(frozen=True, slots=True)
class UnreadNumbers:
    """A numeric column of the window not read yet (from the Parquet export, store/log_window.py):
    `read()` decodes it into a new float64 array (NaN for missing) that the caller owns and may
    sort in place. The drift checks read it on their own threads, so that one column is decoded
    while another is compared, and memory holds only the columns being compared."""

    columns: Mapping[str, np.ndarray]  # read at every lookup
    name: str
    n: int

    def read(self) -> np.ndarray:
        return self.columns[self.name]

    def __len__(self) -> int:
        return self.n

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.read() if dtype is None else self.read().astype(dtype, copy=False)


def to_float(values: Sequence[Any] | np.ndarray | UnreadNumbers) -> tuple[np.ndarray, int]:
    """Values as float64 with NaN for missing, and how many were present but not numbers.

    None and NaN count as missing; strings, booleans and objects count as invalid (NaN too),
    so that a type change in the live data shows up instead of failing the whole report.
    """
    if isinstance(values, UnreadNumbers):
        return values.read(), 0
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(np.float64, copy=False), 0
    items: Sequence[Any] = values.tolist() if isinstance(values, np.ndarray) else values
    # numpy would parse numeric strings and booleans, which JSON numbers never are: check types first.
    if set(map(type, items)) <= {float, int, type(None)}:
        return np.asarray(items, dtype=np.float64), 0
    out = np.empty(len(items), dtype=np.float64)
    invalid = 0
    for i, v in enumerate(items):
        if v is None:
            out[i] = math.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = v
        else:
            out[i] = math.nan
            invalid += 1
    return out, invalid


def category_key(value: Any) -> str:
    """A category's name: strings as they are, other JSON values as their JSON text (`true`, `3`)."""
    if type(value) is str:
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(slots=True)
class CategoryCounts:
    """A categorical column counted already (by the reader of the Parquet export): counts per
    category, in order of first appearance, and the rows without a value."""

    counts: dict[str, int]
    missing: int

    def __len__(self) -> int:
        return sum(self.counts.values()) + self.missing


def count_categories(values: Sequence[Any] | np.ndarray | CategoryCounts) -> tuple[dict[str, int], int]:
    """Counts per category (None and NaN are missing, not a category), and the missing count."""
    if isinstance(values, CategoryCounts):
        return dict(values.counts), values.missing
    items = values.tolist() if isinstance(values, np.ndarray) else values
    try:
        counts: Counter[Any] = Counter(items)
    except TypeError:  # an unhashable value (a list): name every value by its JSON
        counts = Counter(None if v is None else category_key(v) for v in items)
    missing = counts.pop(None, 0)
    out: dict[str, int] = {}
    for value, n in counts.items():
        if isinstance(value, float) and math.isnan(value):
            missing += n
            continue
        key = category_key(value)
        out[key] = out.get(key, 0) + n
    return out, missing


def to_texts(values: Sequence[Any] | np.ndarray) -> tuple[list[str], int, int]:
    """The strings among `values`, how many were missing, and how many were not strings."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    texts = [v for v in values if type(v) is str]
    missing = sum(1 for v in values if v is None)
    return texts, missing, len(values) - len(texts) - missing
