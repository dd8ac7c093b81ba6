"""One logged prediction on the dashboard: the record as served, and its trace.

The trace is a fresh run of the host's current pipeline on the logged input (the service
offers one; `shipway dashboard` over a bare store does not), so it can differ from what was
served when the model or rules changed since: the page says so when the versions differ.
"""

from __future__ import annotations

from typing import Any

import orjson

from shipway.monitoring.dashboard.rendering import utc
from shipway.monitoring.dashboard.snapshot import Sources
from shipway.store import PredictionRecord

__all__ = ["find_record", "prediction_context"]


def find_record(sources: Sources, request_id: str, ts: float | None = None) -> PredictionRecord | None:
    """The logged prediction of the service with `request_id`; `ts` (as the dashboard's links
    carry it) makes the lookup a read of one instant rather than a search."""
    store = sources.store
    if ts is not None:
        rows = store.read_predictions(service=sources.service, since=ts, until=ts + 1e-3, limit=1000)
        found = [r for r in rows if r.request_id == request_id]
        if found:
            return found[-1]
    record = store.find_prediction(request_id)
    return record if record is not None and record.service == sources.service else None


def prediction_context(
    record: PredictionRecord, trace: dict[str, Any] | None, trace_error: str | None, *, host_can_trace: bool
) -> dict[str, Any]:
    """What prediction.html shows of the record and its trace."""
    facts = [
        ("request id", record.request_id),
        ("time", utc(record.ts, micro=True)),
        ("service", record.service),
        ("model version", record.model_version),
        ("rules version", record.rules_version or ""),
        ("dataset version", record.dataset_version or ""),
        ("run id", record.run_id or ""),
        ("latency", f"{record.latency_ms:.2f} ms"),
        ("status", str(record.status)),
    ]
    docs = [("input", record.inputs), ("output (the model's, before rules)", record.outputs)]
    if record.decision is not None:
        docs.append(("decision", record.decision))
    if record.shadow is not None:
        docs.append(("shadow decision (logged, not returned)", record.shadow))
    context: dict[str, Any] = {
        "facts": facts,
        "documents": [(title, _pretty(raw)) for title, raw in docs],
        "host_can_trace": host_can_trace,
        "trace_error": trace_error,
        "stages": None,
        "changed": "",
    }
    if trace is None:
        return context
    ids = trace.get("ids") or {}
    notes = []
    for key, logged in (("model_version", record.model_version), ("rules_version", record.rules_version)):
        now = ids.get(key)
        if (now or "") != (logged or ""):
            notes.append(f"{key.replace('_', ' ')} was {logged or 'none'} when served and is {now or 'none'} now")
    context["changed"] = "; ".join(notes)
    context["stages"] = [
        {
            "stage": stage.get("stage"),
            "kind": stage.get("kind"),
            "ms": stage.get("ms"),
            "input": _short(stage.get("input")),
            "output": _short(stage.get("output")),
            "error": stage.get("error") or "",
        }
        for stage in trace.get("stages") or []
    ]
    return context


def _pretty(raw: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


def _short(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"
