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

Most entries are plain: an answer sent with status 200, no decision and no shadow
(mode on, no rules). For those the request path can skip `PredictionLog.add` and
extend a list of the context's own by five fields (`plain(context)`): no Python
call of ours on the request path, and a little more than half the fields for the
writer to slice and free. The status, decision and shadow are filled in at `take()`.
"""

from __future__ import annotations

import threading
from typing import Any

from shipway.store.records import ROW_COLUMNS, Context, LogColumns, columns_of

__all__ = ["FIELDS", "PLAIN_FIELDS", "Flat", "LogBuffer", "decoded", "flat_size", "groups_of_flat", "split_flat"]

FIELDS = 1 + len(ROW_COLUMNS)  # the context, then a log row's fields
PLAIN_FIELDS = 5  # request_id, ts, latency_ms, inputs, outputs

#: Whole entries as the buffer holds them: the flat list of entries, then each context's flat
#: list of plain entries. Only lists, tuples, strings, numbers, bytes and None, so that one
#: `marshal.dumps` (a C call) carries it to the writer process (store/log_process.py).
Flat = tuple[list[Any], list[tuple[Context, list[Any]]]]


class LogBuffer:
    """Log entries as one flat list: context, request_id, ts, latency_ms, status, inputs,
    outputs, decision, shadow, then the next entry's; the documents as bytes (JSON, UTF-8)."""

    __slots__ = ("_plain", "_take_lock", "fields")

    def __init__(self) -> None:
        self.fields: list[Any] = []
        self._plain: dict[Context, list[Any]] = {}
        self._take_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.fields) // FIELDS + sum(len(p) for p in list(self._plain.values())) // PLAIN_FIELDS

    def plain(self, context: Context) -> list[Any]:
        """The list of plain entries of one context, five fields each: request_id, ts,
        latency_ms, inputs, outputs. It stays this context's for the buffer's life (a
        caller may keep it), so a context has one list however often it is asked for."""
        found = self._plain.get(context)
        if found is None:
            with self._take_lock:
                found = self._plain.setdefault(context, [])
        return found

    def take(self, *, decode: bool = True) -> list[LogColumns]:
        """Remove every whole entry as columns per context, each list's oldest first, the
        documents decoded (`decoded()`), or left as bytes for the caller to decode part by
        part. A context can come in two groups, its plain entries and the others."""
        groups = groups_of_flat(self.take_flat())
        return decoded(groups) if decode else groups

    def take_flat(self) -> Flat:
        """Remove every whole entry as it is held, not cut into columns: the cheapest take,
        for the serving process to hand over to the writer process."""
        with self._take_lock:
            taken = _whole(self.fields, FIELDS)
            plain = [(context, _whole(p, PLAIN_FIELDS)) for context, p in self._plain.items()]
        return taken, [(context, entries) for context, entries in plain if entries]

    def put_flat(self, flat: Flat) -> None:
        """Add entries another buffer's `take_flat` gave, after those held (the writer process)."""
        taken, plain = flat
        self.fields.extend(taken)
        for context, entries in plain:
            self.plain(tuple(context)).extend(entries)  # type: ignore[arg-type]  # marshal keeps the tuple


def groups_of_flat(flat: Flat) -> list[LogColumns]:
    """The entries of `take_flat` as columns per context, the documents as bytes."""
    taken, plain = flat
    groups = _groups(taken) if taken else []
    groups += [_plain_group(tuple(context), entries) for context, entries in plain if entries]  # type: ignore[arg-type]
    return groups


def split_flat(flat: Flat, entries: int) -> list[Flat]:
    """`flat` cut into parts of at most `entries` entries, in the order `groups_of_flat` keeps
    (at least one part, which may be empty)."""
    taken, plain = flat
    step = entries * FIELDS
    parts: list[Flat] = [(taken[i : i + step], []) for i in range(0, len(taken), step)]
    step = entries * PLAIN_FIELDS
    for context, fields in plain:
        parts += [([], [(context, fields[i : i + step])]) for i in range(0, len(fields), step)]
    return parts or [flat]


def flat_size(flat: Flat) -> int:
    """How many entries `take_flat` gave."""
    return len(flat[0]) // FIELDS + sum(len(entries) for _, entries in flat[1]) // PLAIN_FIELDS


def decoded(groups: list[LogColumns]) -> list[LogColumns]:
    """Groups as `LogBuffer.take(decode=False)` gives them, with their documents decoded (a byte
    that is not UTF-8 is kept as a surrogate, for the store to refuse with its error)."""
    return [
        LogColumns(
            g.context,
            g.request_ids,
            g.times,
            g.latencies,
            g.statuses,
            *map(_texts, (g.inputs, g.outputs, g.decisions, g.shadows)),  # type: ignore[arg-type]  # bytes until here
        )
        for g in groups
    ]


def _groups(taken: list[Any]) -> list[LogColumns]:
    contexts = taken[0::FIELDS]
    columns: list[Any] = [taken[i::FIELDS] for i in range(1, 5)]  # request_ids, times, latencies, statuses
    columns += (taken[i::FIELDS] for i in range(5, FIELDS))  # the documents, as bytes
    if contexts.count(contexts[0]) == len(contexts):  # one context: the usual case
        return [LogColumns(contexts[0], *columns)]
    return columns_of(zip(contexts, *columns, strict=True))  # a model or rules swap mid-batch


def _plain_group(context: Context, entries: list[Any]) -> LogColumns:
    n = len(entries) // PLAIN_FIELDS
    columns: list[Any] = [entries[i::PLAIN_FIELDS] for i in range(3)]  # request_ids, times, latencies
    columns.append([200] * n)  # statuses
    columns += (entries[i::PLAIN_FIELDS] for i in range(3, PLAIN_FIELDS))  # the documents, as bytes
    columns += ([None] * n, [None] * n)  # no decision, no shadow
    return LogColumns(context, *columns)


def _whole(fields: list[Any], width: int) -> list[Any]:
    """Remove the whole entries from the front of a flat list of entries `width` fields wide
    and give them back (the caller holds the take lock)."""
    n = len(fields)
    n -= n % width
    taken = fields[:n]
    del fields[:n]
    return taken


def _texts(documents: list[bytes | None]) -> list[str | None]:
    # The writer thread shares a core with the request path: the plain map is about
    # a third faster than the comprehension, which only bytes that are not UTF-8 need.
    if documents.count(None) == len(documents):
        return documents  # type: ignore[return-value]
    try:
        return list(map(bytes.decode, documents))  # type: ignore[arg-type]
    except (UnicodeDecodeError, TypeError):
        return [None if d is None else bytes(d).decode("utf-8", "surrogateescape") for d in documents]
