"""Pacing the prediction log's writer, so that its work does not show in the request path's tail.

The writer shares the GIL with the event loop and the predict thread. Written whole, a
flush of a loaded server (thousands of entries every 0.5 s) is a few long C calls (the
segment's rows, its one orjson call, the rollups, SQLite) for 5 ms and more, and the
request path waits for the GIL meanwhile: the p99 latency with the log on was 40-70%
above the log off (docs/benchmarks.md, issue 15). Paced, a flush is delivered in slices
of at most `SLICE_ENTRIES` entries (about 1.5 ms of work each), and after each slice the
writer sleeps as long as the slice took (at most `_MAX_PAUSE_S`), so that during a flush
the request path gets the GIL at least half the time instead of waiting it out.

A slice is one store call (its own transaction, segment and rollup upserts): about
0.3 ms of CPU more per slice than one call per flush, so slices are not made smaller.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from shipway.store.records import LogColumns, split_at

__all__ = ["SLICE_ENTRIES", "paced", "slices"]

SLICE_ENTRIES = 2000
_MAX_PAUSE_S = 0.005


def slices(groups: list[LogColumns], size: int = SLICE_ENTRIES) -> list[list[LogColumns]]:
    """The groups in order, cut into slices of at most `size` entries (contexts kept apart)."""
    out = []
    rest = groups
    while rest:
        part, rest = split_at(rest, size)
        out.append(part)
    return out


def paced(parts: list[list[LogColumns]]) -> Iterator[list[LogColumns]]:
    """The slices in order; between two of them the calling thread sleeps as long as it spent
    on the slice before (at most `_MAX_PAUSE_S`), so that threads waiting for the GIL run."""
    handed = None
    for part in parts:
        if handed is not None:
            time.sleep(min(time.perf_counter() - handed, _MAX_PAUSE_S))
        handed = time.perf_counter()
        yield part
