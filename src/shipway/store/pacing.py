"""Pacing the prediction log's writer, so that its work does not show in the request path's tail.

The writer shares the GIL, and on a busy machine the core, with the event loop and the
predict thread. At 64 connections a request spends about 5 ms in the worker, and every
request in flight waits out whatever the writer runs meanwhile: a flush of the identity
service (6,500 entries) written in five stretches of 1.3 to 1.5 ms of CPU (taking and
decoding the buffer, then slices of 2,000 entries, with a pause as long as the slice
between) put 3 to 4 ms on the few percent of requests that met it, which is the p99
(40-70% above the log off; docs/benchmarks.md, issue 15). What the tail needs is not less
work but the same work in short pieces, spread out.

So a flush is taken without decoding and cut into slices of at most `SLICE_ENTRIES`
entries, and a slice is handled in three pieces: decoded and redacted (about 0.25 ms of
CPU); encoded and folded into rollup rows (about 0.5 ms); written in one transaction
(about 0.6 ms, most of it SQLite's, the commit alone about 0.3 ms). After each piece the
writer sleeps `1 / SHARE - 1` times the CPU time it took (from `_MIN_PAUSE_S` to
`_MAX_PAUSE_S`): the writer runs at most a `SHARE` of the time while it writes a flush,
and a request in flight at 64 connections waits out at most one piece. The pauses of one
flush together stay within a budget (half the flush interval), so a writer that falls
behind catches up unpaced. What is left in the tail is SQLite's WAL checkpoint, a stretch
of several milliseconds every few seconds, as before.

A slice is one store call (its own transaction, segment and rollup upserts), so slices
are not made smaller: at 500 entries the writer's CPU per entry rose by half.
"""

from __future__ import annotations

import time

from shipway.store.records import LogColumns, split_at

__all__ = ["SHARE", "SLICE_ENTRIES", "Pacer", "slices"]

SLICE_ENTRIES = 1000
SHARE = 0.1  # the writer's share of the time while it writes a flush
# At least a request's time in a loaded worker (about 5 ms at 64 connections) between two
# pieces, so that no request waits out more than one of them.
_MIN_PAUSE_S = 0.005
_MAX_PAUSE_S = 0.01


def slices(groups: list[LogColumns], size: int = SLICE_ENTRIES) -> list[list[LogColumns]]:
    """The groups in order, cut into slices of at most `size` entries (contexts kept apart)."""
    out = []
    rest = groups
    while rest:
        part, rest = split_at(rest, size)
        out.append(part)
    return out


class Pacer:
    """Pauses between the pieces of one flush's work: `pause()` sleeps `1 / SHARE - 1` times the
    CPU time this thread spent since the last pause (from `_MIN_PAUSE_S` to `_MAX_PAUSE_S`),
    all pauses together within `budget_s` of the pacer's making (0: no pauses), so that the
    threads waiting for the GIL or the CPU run meanwhile."""

    def __init__(self, budget_s: float) -> None:
        self.deadline = time.monotonic() + budget_s
        self.budget_s = budget_s
        self.since = time.thread_time()

    def pause(self) -> None:
        now = time.thread_time()
        spent, self.since = now - self.since, now
        if self.budget_s <= 0:
            return
        pause = min(max(spent * (1 / SHARE - 1), _MIN_PAUSE_S), _MAX_PAUSE_S, self.deadline - time.monotonic())
        if pause > 0:
            time.sleep(pause)
            self.since = time.thread_time()
