"""The model candidate on the dashboard and in the report: its state and its comparison with the
live version over the window (store/version_comparison.py, the numbers `shipway rollout compare`
prints and the rollout guards judge).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

import orjson

from shipway.registry import current_candidate
from shipway.store import Store
from shipway.store.outcomes import OutputReader
from shipway.store.version_comparison import compare_versions

__all__ = ["candidate_html", "candidate_json", "disagreements_table", "esc", "html_table", "pct", "short"]


def candidate_json(
    store: Store, service: str, since: float, until: float, reader: Any = None, examples: int = 3
) -> dict[str, Any]:
    """`{"status": "none" | "ok", "message", "state", "comparison"}`: the service's newest
    candidate state and its comparison with the live version over the window."""
    state = current_candidate(store, service)
    if state is None:
        return {
            "status": "none",
            "message": "no model candidate yet; start one with `shipway rollout start VERSION`",
            "state": None,
            "comparison": None,
        }
    found = compare_versions(
        store,
        service,
        state.version,
        since=since,
        until=until,
        reader=reader if isinstance(reader, OutputReader) else None,
        examples=examples,
    )
    return {"status": "ok", "message": "", "state": state.to_dict(), "comparison": found.to_dict()}


def candidate_html(data: Mapping[str, Any]) -> str:
    """The Candidate section: the state, both versions' figures, agreement, per-class
    disagreements with example requests. Every value is escaped."""
    if data["status"] != "ok":
        return _section(f'<p class="empty">{esc(data["message"])}</p>')
    state, comparison = data["state"], data["comparison"]
    live, cand = comparison["live"], comparison["candidate"]
    share = f"{state['share']:g}"
    head = (
        f"<p>Candidate <b>{esc(state['version'])}</b> is <b>{esc(state['mode'])}</b> "
        f"(share {esc(share)}) since {esc(_time(state['changed_at']))}, "
        f"by {esc(state['actor'])}: {esc(state['reason'])}</p>"
    )
    rows = [
        [
            role,
            f["version"] or "(none)",
            f["requests"],
            f["errors"],
            pct(f["error_rate"]),
            _ms(f["latency_p50_ms"]),
            _ms(f["latency_p99_ms"]),
            f["labelled"],
            pct(f["accuracy"]),
        ]
        for role, f in (("live", live), ("candidate", cand))
    ]
    figures = html_table(
        ["", "version", "requests", "errors", "error rate", "p50", "p99", "labelled", "accuracy"], rows
    )
    agreement = (
        f"<p>Agreement with the live version: <b>{esc(pct(comparison['agreement']))}</b> of "
        f"{esc(comparison['paired'])} requests both answered.</p>"
    )
    disagreements = disagreements_table(
        comparison["disagreements"], ["live said", "candidate said"], "no disagreements in the window"
    )
    return _section(head + figures + agreement + "<h3>Disagreements</h3>" + disagreements)


def disagreements_table(disagreements: list[dict[str, Any]], sides: list[str], empty: str) -> str:
    """The first 30 disagreements (store.version_comparison's shape): what each side said, how
    often, and example requests; `empty` when there are none."""
    lines = [
        [
            d["live"],
            d["candidate"],
            d["count"],
            " | ".join(f"{e['request_id']}: {short(e['inputs'])}" for e in d["examples"]),
        ]
        for d in disagreements[:30]
    ]
    return html_table([*sides, "requests", "examples"], lines) if lines else f'<p class="empty">{esc(empty)}</p>'


def _section(body: str) -> str:
    return f'<section id="candidate"><h2>Model candidate</h2>{body}</section>'


def html_table(head: list[str], rows: list[list[Any]]) -> str:
    heads = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="table"><table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table></div>'


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "n/a"


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, int | float) else "n/a"


def _time(ts: Any) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
