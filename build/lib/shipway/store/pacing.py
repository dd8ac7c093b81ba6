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

from shipway.store.records import ROW_COLUMNS, LogColumns

__all__ = ["SLICE_ENTRIES", "paced"]

SLICE_ENTRIES = 2000
_MAX_PAUSE_S = 0.005


def paced(groups: list[LogColumns], size: int = SLICE_ENTRIES) -> Iterator[list[LogColumns]]:
    """The groups in order, in slices of at most `size` entries; between two slices the
    calling thread sleeps as long as it spent on the slice before (at most `_MAX_PAUSE_S`),
    so that threads waiting for the GIL run."""
    part: list[LogColumns] = []
    room = size
    for group in groups:
        n = len(group)
        start = 0
        while start < n:
            if not room:
                handed = time.perf_counter()
                yield part
                time.sleep(min(time.perf_counter() - handed, _MAX_PAUSE_S))
                part, room = [], size
            end = min(n, start + room)
            part.append(group if start == 0 and end == n else _cut(group, start, end))
            room -= end - start
            start = end
    if part:
        yield part


def _cut(group: LogColumns, start: int, end: int) -> LogColumns:
    return LogColumns(group.context, *(getattr(group, name)[start:end] for name in ROW_COLUMNS))
