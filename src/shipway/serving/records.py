"""The prediction log's record of one answered item, built on the request path after the answer is sent."""

from __future__ import annotations

import time
from typing import Any

import orjson

from shipway.core.decided import Decided
from shipway.core.pipeline import Pipeline
from shipway.store.records import PredictionRecord

__all__ = ["prediction_record"]


def prediction_record(
    pipeline: Pipeline,
    name: str,
    ids: dict[str, str | None],
    mode: str,
    mode_decision: bytes,
    request_id: str,
    seconds: float,
    inputs: bytes,
    answer: bytes,
    output: Any,
) -> PredictionRecord:
    """`answer` is the body sent; `output` what the pipeline returned (None in mode off).
    The log keeps the model's output before any rules, so that backtests can replay rules
    over it; in modes shadow and off the decision logged is the mode's (`mode_decision`)."""
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
    return PredictionRecord(
        request_id=request_id,
        ts=time.time(),
        service=name,
        model_version=ids["model_version"] or "",
        latency_ms=seconds * 1000,
        inputs=inputs,
        outputs=outputs,
        decision=decision,
        shadow=shadow,
        rules_version=ids.get("rules_version"),
        dataset_version=ids.get("dataset_version"),
        run_id=ids.get("run_id"),
    )
