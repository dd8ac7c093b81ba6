"""The prediction log's buffer: one flat list of fields, extended by the request path.

A tuple (or record) per prediction kept until the writer frees it would be a
container the garbage collector tracks: every request would leave one more
tracked object behind, which under load sets off a young-generation collection
every few hundred requests in a server that otherwise allocates almost nothing
that outlives its request. Here `add` extends one list by the entry's nine
fields (the tuple it passes is freed at once), so nothing is built per entry
that outlives the request, and the documents stay the bytes they arrived as:
decoding them is left to the writer thread. One `list.extend` is one C call,
about a third of the cost of appending each field to a column of its own.

One thread adds (the event loop, through PredictionLog.add), others take (the
writer, or `close()` when the writer is stuck). An extend is whole under the
GIL, so the list's length is a multiple of the number of fields; `take()`
removes the whole entries from the front all the same, and splits them into
columns with one stepped slice per field.
"""

from __future__ import annotations

import threading
from typing import Any

from shipway.store.records import ROW_COLUMNS, LogColumns, columns_of

__all__ = ["FIELDS", "LogBuffer"]

FIELDS = 1 + len(ROW_COLUMNS)  # the context, then a log row's fields


class LogBuffer:
    """Log entries as one flat list: context, request_id, ts, latency_ms, status, inputs,
    outputs, decision, shadow, then the next entry's; the documents as bytes (JSON, UTF-8)."""

    __slots__ = ("_take_lock", "fields")

    def __init__(self) -> None:
        self.fields: list[Any] = []
        self._take_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.fields) // FIELDS

    def take(self) -> list[LogColumns]:
        """Remove every whole entry, oldest first, as columns per context (documents decoded;
        a byte that is not UTF-8 is kept as a surrogate, for the store to refuse with its error)."""
        fields = self.fields
        with self._take_lock:
            n = len(fields)
            n -= n % FIELDS
            if not n:
                return []
            taken = fields[:n]
            del fields[:n]
        contexts = taken[0::FIELDS]
        columns: list[Any] = [taken[i::FIELDS] for i in range(1, 5)]  # request_ids, times, latencies, statuses
        columns += map(_texts, (taken[i::FIELDS] for i in range(5, FIELDS)))  # the documents
        if contexts.count(contexts[0]) == len(contexts):  # one context: the usual case
            return [LogColumns(contexts[0], *columns)]
        return columns_of(zip(contexts, *columns, strict=True))  # a model or rules swap mid-batch


def _texts(documents: list[bytes | None]) -> list[str | None]:
    # The writer thread shares a core with the request path: the plain map is about
    # a third faster than the comprehension, which only bytes that are not UTF-8 need.
    if documents.count(None) == len(documents):
        return documents  # type: ignore[return-value]
    try:
        return list(map(bytes.decode, documents))  # type: ignore[arg-type]
    except (UnicodeDecodeError, TypeError):
        return [None if d is None else bytes(d).decode("utf-8", "surrogateescape") for d in documents]
