"""A radix sort of float64 values, for the drift checks' one sort per numeric column.

numpy's sort of doubles runs at about 66 ns a value on this project's machine (an AMD EPYC on
which numpy does not dispatch its SIMD sort), so a window of ten million values spends 0.66 s
of CPU per column sorting, two thirds of an exact drift report. This sorts the same values in
eight counting passes over their bits, about 3 times faster, when numba is installed (the
kernel is compiled at its first use and cached on disk): `sort(values)` sorts in place and
leaves the values bit for bit as numpy's sort leaves them (equal values are equal bits, save
-0.0 and 0.0, which come out in that order; numpy's sort leaves them in either). Without numba
it is numpy's sort.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sort"]

_MIN_SIZE = 100_000  # below this, numpy's sort is as fast, and nothing need be compiled
_kernel: Any = None


def sort(values: np.ndarray) -> None:
    """Sort float64 values without NaN where they are (C-contiguous), fastest way available."""
    kernel = _load() if len(values) >= _MIN_SIZE and values.dtype == np.float64 else None
    if kernel is None or not values.flags.c_contiguous or not values.flags.writeable:
        values.sort()
        return
    kernel(values.view(np.uint64), np.empty(len(values), dtype=np.uint64))


def _load() -> Any:
    global _kernel
    if _kernel is None:
        try:
            from numba import njit
        except ImportError:
            _kernel = False
        else:
            _kernel = njit(nogil=True, cache=True)(_radix)
    return _kernel or None


def _radix(keys: np.ndarray, spare: np.ndarray) -> None:  # pragma: no cover - compiled by numba
    # A double's bits order as an unsigned integer once a negative one has every bit flipped
    # and a positive one its sign bit set; the last pass turns them back.
    n = keys.shape[0]
    top = np.uint64(1) << np.uint64(63)
    counts = np.zeros((8, 256), np.int64)
    for i in range(n):
        k = keys[i]
        k = ~k if k & top else k | top
        keys[i] = k
        for b in range(8):
            counts[b, (k >> np.uint64(8 * b)) & np.uint64(255)] += 1
    src, dst = keys, spare
    offsets = np.empty(256, np.int64)
    for b in range(8):
        if counts[b].max() == n:  # every value has the same byte here: nothing to move
            continue
        total = 0
        for d in range(256):
            offsets[d] = total
            total += counts[b, d]
        shift = np.uint64(8 * b)
        for i in range(n):
            k = src[i]
            d = (k >> shift) & np.uint64(255)
            dst[offsets[d]] = k
            offsets[d] += 1
        src, dst = dst, src
    for i in range(n):
        k = src[i]
        keys[i] = k & ~top if k & top else ~k
