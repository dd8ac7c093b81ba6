"""The prediction log's buffer: one column per field, appended to by the request path.

A tuple (or record) per prediction would be a container the garbage collector
tracks from the moment it is built until the writer frees it: every request
would leave one more tracked object behind, which under load sets off a
young-generation collection every few hundred requests in a server that
otherwise allocates almost nothing that outlives its request. Appending each
field to a column of its own (lists of strings and bytes, arrays of doubles)
builds nothing per entry, and the documents stay the bytes they arrived as:
decoding them is left to the writer thread.

One thread appends (the event loop, through PredictionLog.add), others take
(the writer, or `close()` when the writer is stuck). Appends go column by
column in the order of the fields, the `shadows` column last, so the length of
that column counts whole entries; `take()` removes that many from the front of
every column, which no append touches.
"""

from __future__ import annotations

import threading
from array import array
from typing import Any

from shipway.store.records import ROW_COLUMNS, Context, LogColumns

__all__ = ["LogBuffer"]


class LogBuffer:
    """Log entries as columns; the documents as bytes (JSON, UTF-8)."""

    __slots__ = (
        "_columns",
        "_take_lock",
        "contexts",
        "decisions",
        "inputs",
        "latencies",
        "outputs",
        "request_ids",
        "shadows",
        "statuses",
        "times",
    )

    def __init__(self) -> None:
        self.contexts: list[Context] = []
        self.request_ids: list[str] = []
        self.times = array("d")
        self.latencies = array("d")
        self.statuses: list[int] = []
        self.inputs: list[bytes] = []
        self.outputs: list[bytes] = []
        self.decisions: list[bytes | None] = []
        self.shadows: list[bytes | None] = []  # appended last: see the module's docstring
        self._columns = (self.contexts, *(getattr(self, name) for name in ROW_COLUMNS))
        self._take_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.shadows)

    def take(self) -> list[LogColumns]:
        """Remove every whole entry, oldest first, as columns per context (documents decoded;
        a byte that is not UTF-8 is kept as a surrogate, for the store to refuse with its error)."""
        with self._take_lock:
            n = len(self.shadows)
            if not n:
                return []
            parts: list[Any] = []  # the columns' types: see __init__
            for column in self._columns:
                parts.append(column[:n])
                del column[:n]
        contexts, request_ids, times, latencies, statuses, inputs, outputs, decisions, shadows = parts
        columns: list[Any] = [
            request_ids,
            times,
            latencies,
            statuses,
            *map(_texts, (inputs, outputs, decisions, shadows)),
        ]
        if contexts.count(contexts[0]) == n:  # one context: the usual case
            return [LogColumns(contexts[0], *columns)]
        positions: dict[Context, list[int]] = {}
        for i, context in enumerate(contexts):
            positions.setdefault(context, []).append(i)
        return [LogColumns(context, *([c[i] for i in kept] for c in columns)) for context, kept in positions.items()]


def _texts(documents: list[bytes | None]) -> list[str | None]:
    # The writer thread shares a core with the request path: the plain map is about
    # a third faster than the comprehension, which only bytes that are not UTF-8 need.
    if documents.count(None) == len(documents):
        return documents  # type: ignore[return-value]
    try:
        return list(map(bytes.decode, documents))  # type: ignore[arg-type]
    except (UnicodeDecodeError, TypeError):
        return [None if d is None else bytes(d).decode("utf-8", "surrogateescape") for d in documents]
