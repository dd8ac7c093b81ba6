"""Where two JSON-like values differ, in words: how the checker compares answers."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ABS_TOLERANCE", "REL_TOLERANCE", "difference"]

# Batch and single forms may differ by float rounding: BLAS kernels and padding change with the
# batch size (a transformer encoder pads a batch to its longest text). Real disagreements are larger.
REL_TOLERANCE = 1e-4
ABS_TOLERANCE = 1e-6


def difference(a: Any, b: Any, path: str = "", *, exact: bool = False) -> str | None:
    """Where two JSON-like values differ first, in words; None when they agree."""
    where = path or "the output"
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where} has keys {sorted(a)} against {sorted(b)}"
        for key in a:
            found = difference(a[key], b[key], f"{path}.{key}" if path else str(key), exact=exact)
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{where} has {len(a)} items against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{path}.{i}" if path else str(i), exact=exact)
            if found:
                return found
        return None
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return None
        if a == b or (not exact and math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)):
            return None
        return f"{where} is {a!r} against {b!r}"
    if a == b and type(a) is type(b):
        return None
    return f"{where} is {short(a)} against {short(b)}"


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
