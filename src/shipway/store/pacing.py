"""Pacing the prediction log's writer, so that its work does not show in the request path's tail.

The writer shares the GIL with the event loop and the predict thread. Written whole, a
flush of a loaded server (thousands of entries every 0.5 s) is a few long C calls (the
segment's rows, its one orjson call, SQLite) in which no other thread runs: requests
that arrive meanwhile wait for all of it, and the p99 latency with the log on was 40-70%
above the log off (docs/benchmarks.md, issue 15). Paced, a flush is written in slices of
`SLICE_ENTRIES` entries, and between two slices the writer sleeps for a moment, which
hands the GIL to a thread waiting for it. A thread that wants the GIL back waits for
CPython's switch interval (5 ms) before it may force a switch, so the writer gets at
least a slice every 5 ms or so under load: a slice of 1,000 entries takes about 1 ms,
which keeps up with far more than a worker serves. What the store does per slice
(a transaction, a segment row) costs about the same as per flush at this size.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from shipway.store.records import ROW_COLUMNS, LogColumns

__all__ = ["SLICE_ENTRIES", "paced"]

SLICE_ENTRIES = 1000
_PAUSE_S = 0.0001


def paced(groups: list[LogColumns], size: int = SLICE_ENTRIES) -> Iterator[list[LogColumns]]:
    """The groups in order, in slices of at most `size` entries; between two slices the
    calling thread sleeps briefly, so that threads waiting for the GIL run."""
    part: list[LogColumns] = []
    room = size
    for group in groups:
        n = len(group)
        start = 0
        while start < n:
            if not room:
                yield part
                time.sleep(_PAUSE_S)
                part, room = [], size
            end = min(n, start + room)
            part.append(group if start == 0 and end == n else _cut(group, start, end))
            room -= end - start
            start = end
    if part:
        yield part


def _cut(group: LogColumns, start: int, end: int) -> LogColumns:
    return LogColumns(group.context, *(getattr(group, name)[start:end] for name in ROW_COLUMNS))
