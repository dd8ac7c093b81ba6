"""What the prediction log keeps of one answered item, besides its inputs."""

from __future__ import annotations

from typing import Any

import orjson

from shipway.core.decided import Decided
from shipway.core.pipeline import Pipeline

__all__ = ["logged_outputs"]


def logged_outputs(
    pipeline: Pipeline, mode: str, mode_decision: bytes, answer: bytes, output: Any
) -> tuple[bytes, bytes | None, bytes | None]:
    """(outputs, decision, shadow) as JSON bytes. `answer` is the body sent; `output` what
    the pipeline returned (None in mode off).

    The log keeps the model's output before any rules, so that backtests can replay rules
    over it; in modes shadow and off the decision logged is the mode's (`mode_decision`)."""
    if mode == "on":
        if not isinstance(output, Decided):
            return answer, None, None
        decision = output.decision_json or (None if output.decision is None else orjson.dumps(output.decision))
        shadow = None if output.shadow is None else orjson.dumps(output.shadow)
        return pipeline.render_model_output(output), decision, shadow
    if output is None:
        return answer, mode_decision, None
    shadow = orjson.dumps(output.decision) if isinstance(output, Decided) and output.decision is not None else None
    return pipeline.render_model_output(output), mode_decision, shadow
