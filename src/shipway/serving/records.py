"""The prediction log's entry for one answered item, built on the request path after the answer is sent."""

from __future__ import annotations

import time
from typing import Any

import orjson

from shipway.core.decided import Decided
from shipway.core.pipeline import Pipeline
from shipway.store.records import Context, LogEntry

__all__ = ["log_entry"]


def log_entry(
    pipeline: Pipeline,
    context: Context,
    mode: str,
    mode_decision: bytes,
    request_id: str,
    seconds: float,
    inputs: bytes,
    answer: bytes,
    output: Any,
) -> LogEntry:
    """`answer` is the body sent; `output` what the pipeline returned (None in mode off).
    The log keeps the model's output before any rules, so that backtests can replay rules
    over it; in modes shadow and off the decision logged is the mode's (`mode_decision`).

    The outputs are orjson's, so UTF-8; the inputs passed the request parser, and a byte
    that still is not UTF-8 is kept as a surrogate for the store to refuse, not raised here."""
    outputs, decision, shadow = answer, None, None
    if mode != "on":
        decision = mode_decision
        if output is not None:
            outputs = pipeline.render_model_output(output)
            if isinstance(output, Decided) and output.decision is not None:
                shadow = orjson.dumps(output.decision)
    elif isinstance(output, Decided):
        outputs = pipeline.render_model_output(output)
        decision = output.decision_json or (None if output.decision is None else orjson.dumps(output.decision))
        shadow = None if output.shadow is None else orjson.dumps(output.shadow)
    return (
        context,
        request_id,
        time.time(),
        seconds * 1000,
        200,
        inputs.decode("utf-8", "surrogateescape"),
        outputs.decode(),
        None if decision is None else decision.decode(),
        None if shadow is None else shadow.decode(),
    )
