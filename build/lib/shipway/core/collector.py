"""Pausing the garbage collector around work that builds many containers none of which is in a cycle."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the body with the cyclic collector off, and turn it back on after if it was on.

    Building n containers sets off a young-generation collection every 700 allocations,
    and each one scans what the body has built so far: for a list of tuples made with
    zip, the collections take more time than building the tuples (about 70 of 120 ns a
    row on these machines). The collector is process-wide: another thread's garbage
    waits for the body too, which is why the body should be short (milliseconds)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
