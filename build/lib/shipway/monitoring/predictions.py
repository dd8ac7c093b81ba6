"""One logged prediction on the dashboard: the record as served, and its trace.

The trace is a fresh run of the host's current pipeline on the logged input (the service
offers one; `shipway dashboard` over a bare store does not), so it can differ from what was
served when the model or rules changed since: the page says so when the versions differ.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from shipway.monitoring.panels import esc
from shipway.monitoring.snapshot import Sources
from shipway.store import PredictionRecord

__all__ = ["find_record", "prediction_page"]


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


def prediction_page(
    record: PredictionRecord,
    trace: dict[str, Any] | None,
    trace_error: str | None,
    *,
    host_can_trace: bool,
    back: str,
) -> str:
    """The HTML of the prediction page (escaped throughout)."""
    when = datetime.fromtimestamp(record.ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    facts = [
        ("request id", record.request_id),
        ("time", when),
        ("service", record.service),
        ("model version", record.model_version),
        ("rules version", record.rules_version or ""),
        ("dataset version", record.dataset_version or ""),
        ("run id", record.run_id or ""),
        ("latency", f"{record.latency_ms:.2f} ms"),
        ("status", str(record.status)),
    ]
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    docs = [("input", record.inputs), ("output (the model's, before rules)", record.outputs)]
    if record.decision is not None:
        docs.append(("decision", record.decision))
    if record.shadow is not None:
        docs.append(("shadow decision (logged, not returned)", record.shadow))
    blocks = "".join(f"<h3>{esc(title)}</h3><pre>{esc(_pretty(raw))}</pre>" for title, raw in docs)
    parts = [
        f'<p><a href="{esc(back)}">back to the dashboard</a></p>',
        f'<section id="record"><h2>Logged prediction</h2><div class="table"><table>{rows}</table></div>{blocks}</section>',
        _trace_section(record, trace, trace_error, host_can_trace),
    ]
    return "".join(parts)


def _trace_section(
    record: PredictionRecord, trace: dict[str, Any] | None, error: str | None, host_can_trace: bool
) -> str:
    if not host_can_trace:
        note = (
            "This dashboard reads the store alone, with no pipeline to re-run, so it shows the logged record. "
            "For the stage-by-stage trace, open this page on the running service's dashboard, or run "
            "<code>shipway explain TARGET @input.json</code> with the input above."
        )
        return f'<section id="trace"><h2>Trace</h2><p class="empty">{note}</p></section>'
    if trace is None:
        return f'<section id="trace"><h2>Trace</h2><p class="error">re-running the input failed: {esc(error)}</p></section>'
    ids = trace.get("ids") or {}
    notes = []
    for key, logged in (("model_version", record.model_version), ("rules_version", record.rules_version)):
        now = ids.get(key)
        if (now or "") != (logged or ""):
            notes.append(f"{key.replace('_', ' ')} was {logged or 'none'} when served and is {now or 'none'} now")
    changed = (
        f'<p class="notice">Re-run on the current pipeline: {esc("; ".join(notes))}, so the trace may differ '
        "from what was served.</p>"
        if notes
        else '<p class="note">Re-run now on the current pipeline, with the versions that served it.</p>'
    )
    rows = []
    for stage in trace.get("stages") or []:
        error = stage.get("error")
        rows.append(
            "<tr>"
            f"<td>{esc(stage.get('stage'))}</td><td>{esc(stage.get('kind'))}</td><td>{esc(stage.get('ms'))}</td>"
            f"<td class='text'>{esc(_short(stage.get('input')))}</td>"
            f"<td class='text'>{esc(_short(stage.get('output')))}</td>"
            f"<td class='bad'>{esc(error or '')}</td>"
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("stage", "kind", "ms", "input", "output", "error"))
    table = f'<div class="table"><table class="stages"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    return f'<section id="trace"><h2>Trace</h2>{changed}{table}</section>'


def _pretty(raw: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


def _short(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"
