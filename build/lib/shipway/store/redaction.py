"""Running the user's redact hook over a batch, off the request path."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from shipway.store.records import LogColumns, PredictionRecord, columns_of_records, records_of_columns

__all__ = ["REDACTION_FAILED", "Redact", "Redacted", "redact_batch", "redact_columns"]

logger = logging.getLogger("shipway.store")

#: Called with {"inputs": ..., "outputs": ..., "request_id": ...}; returns the same
#: shape to store, or None to store nothing.
Redact = Callable[[dict[str, Any]], dict[str, Any] | None]

#: What replaces inputs and outputs when the hook fails: the row is kept, the body never.
REDACTION_FAILED = orjson.dumps({"redaction_failed": True})


@dataclasses.dataclass(slots=True)
class Redacted:
    """A batch after redaction, with what happened to the rest."""

    records: list[PredictionRecord]
    dropped: int = 0  # the hook returned None
    failures: list[tuple[str, Exception]] = dataclasses.field(default_factory=list)


def redact_batch(batch: Sequence[PredictionRecord], redact: Redact) -> Redacted:
    """Pass each record's parsed documents through `redact` and re-serialise the result.

    Never raises for a failing hook: the record is kept with both documents
    replaced by REDACTION_FAILED, and the failure is reported in `failures`.
    """
    result = Redacted(records=[])
    for r in batch:
        try:
            redacted = redact(
                {
                    "inputs": orjson.loads(r.inputs),
                    "outputs": orjson.loads(r.outputs),
                    "request_id": r.request_id,
                }
            )
            if redacted is None:
                result.dropped += 1
                continue
            inputs = orjson.dumps(redacted["inputs"])
            outputs = orjson.dumps(redacted["outputs"])
        except Exception as exc:
            # Storing the raw body would leak exactly what the hook exists to hide.
            result.failures.append((r.request_id, exc))
            inputs = outputs = REDACTION_FAILED
        result.records.append(dataclasses.replace(r, inputs=inputs, outputs=outputs))
    return result


def redact_columns(batch: Sequence[LogColumns], redact: Redact) -> tuple[list[LogColumns], Redacted]:
    """`redact_batch` over a batch as columns per context, the hook's failures logged with
    the first one's traceback; the redacted batch, and what happened."""
    records = records_of_columns(batch)
    result = redact_batch(records, redact)
    if result.failures:
        request_id, first = result.failures[0]
        logger.error(
            "the redact hook failed on %d of %d records (first: request %s); stored "
            'them with inputs and outputs replaced by {"redaction_failed": true}',
            len(result.failures),
            len(records),
            request_id,
            exc_info=first,
        )
    return columns_of_records(result.records, "surrogateescape"), result
