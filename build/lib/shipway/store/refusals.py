"""Records a store refuses: found in a batch by halving it, and kept aside as spool lines.

A store refuses a batch whole when one record in it cannot be written (a document
that is not UTF-8, say). Halving finds the bad records in about log2(n)
transactions each, where one transaction per record would stall the writer on a
large batch; the rest of the batch is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import orjson

from shipway.errors import StoreUnavailable
from shipway.store.records import LogColumns, LogEntry, columns_of, entries_of_columns, record_of, size
from shipway.store.spool import encode_line

__all__ = ["refused_lines", "write_finding_refused"]

logger = logging.getLogger("shipway.store")


def write_finding_refused(
    write: Callable[[list[LogColumns]], None],
    groups: list[LogColumns],
    refuse: Callable[[Sequence[LogEntry], Exception], None],
    *,
    top: bool = True,
) -> int:
    """`write` the batch; if the store refuses it, split it until each refused entry is alone
    and hand those to `refuse`. Returns how many were written; StoreUnavailable propagates
    (the caller spools the whole batch, and the store ignores the part already written
    when the spool is replayed)."""
    try:
        write(groups)
        return size(groups)
    except StoreUnavailable:
        raise
    except Exception as exc:
        entries = entries_of_columns(groups)
        if len(entries) == 1:
            refuse(entries, exc)
            return 0
        if top:
            logger.warning("the store refused a batch of %d (%s); looking for the bad records", len(entries), exc)
    half = len(entries) // 2
    return write_finding_refused(write, columns_of(entries[:half]), refuse, top=False) + write_finding_refused(
        write, columns_of(entries[half:]), refuse, top=False
    )


def refused_lines(entries: Sequence[LogEntry]) -> list[bytes]:
    """Spool lines for refused entries; one that cannot even be encoded is kept as its repr."""
    lines = []
    for e in entries:
        try:
            lines.append(encode_line(record_of(e)))
        except Exception:
            lines.append(orjson.dumps({"unreadable_record": repr(e)}))
    return lines
