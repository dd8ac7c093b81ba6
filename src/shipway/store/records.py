"""The row the prediction log stores: one served request."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PredictionRecord", "RulesEvent"]


@dataclass(slots=True)
class PredictionRecord:
    """One prediction as served, with the ids that make it explainable.

    `inputs` and `outputs` are already-serialised JSON documents: the serving
    layer hands over the request and response bodies it has anyway, so the
    request path never serialises twice.

    `(request_id, ts)` identifies a record: a spool replay skips records already
    stored, which is what makes replaying after an outage safe.
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
    decision: bytes | None = None  # JSON: the rules' decision that was returned
    shadow: bytes | None = None  # JSON: what shadow rules decided, logged and not returned


@dataclass(slots=True)
class RulesEvent:
    """One entry of a service's rules history: a version applied or rolled back to.

    The newest event of a service names its active rules; `options` holds the
    rule set's mode (on, shadow, off) and canary settings as given at apply time.
    """

    id: int
    service: str
    version: str
    action: str  # "apply" or "rollback"
    ts: float
    actor: str | None
    options: dict[str, object]
    source: str
