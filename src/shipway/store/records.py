"""The row the prediction log stores: one served request."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PredictionRecord"]


@dataclass(slots=True)
class PredictionRecord:
    """One prediction as served, with the ids that make it explainable.

    `inputs` and `outputs` are already-serialised JSON documents: the serving
    layer hands over the request and response bodies it has anyway, so the
    request path never serialises twice.

    `(request_id, ts)` identifies a record: the store ignores a second record
    with both equal, which is what makes replaying a spool after an outage safe.
    """

    request_id: str
    ts: float  # unix seconds
    service: str
    model_version: str
    latency_ms: float
    inputs: bytes
    outputs: bytes
    rules_version: str | None = None
    dataset_version: str | None = None
    run_id: str | None = None
    status: int = 200
