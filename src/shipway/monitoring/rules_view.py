"""Shadow rules against the live rules on the dashboard and in the report (rules/comparison.py,
the numbers `shipway rules compare` prints)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipway.monitoring.candidate_view import disagreements_table, esc, html_table, pct
from shipway.rules.comparison import compare_rules
from shipway.store import Store
from shipway.store.columnar import logged_records
from shipway.store.outcomes import OutputReader

__all__ = ["rules_html", "rules_json"]

_SCORES = (
    ("accuracy of the answers", "accuracy", pct),
    ("wrong answers sent for review", "caught", str),
    ("wrong answers returned unreviewed", "through", str),
    ("answered with the default", "fell_back", str),
    ("sent for review", "reviewed", str),
)


def rules_json(
    store: Store,
    service: str,
    since: float,
    until: float,
    reader: Any = None,
    export: Path | None = None,
    examples: int = 3,
) -> dict[str, Any]:
    """`{"status": "none" | "ok", "message", "comparison"}`: the shadow rules against the live
    ones over the window's logged predictions (the export's rows where it holds them)."""
    records = logged_records(store, export, service=service, since=since, until=until)
    found = compare_rules(
        store,
        service,
        since=since,
        until=until,
        records=records,
        reader=reader if isinstance(reader, OutputReader) else None,
        examples=examples,
    ).to_dict()
    if not found["compared"]:
        message = (
            "no prediction of this window was decided by shadow rules beside the live rules; "
            "apply some with `shipway rules apply FILE --mode shadow`"
        )
        return {"status": "none", "message": message, "comparison": found}
    return {"status": "ok", "message": "", "comparison": found}


def rules_html(data: Mapping[str, Any]) -> str:
    """The shadow rules section: agreement, changes with example requests, both versions'
    scores on the feedback. Every value is escaped."""
    if data["status"] != "ok":
        return _section(f'<p class="empty">{esc(data["message"])}</p>')
    c = data["comparison"]
    head = (
        f"<p>Shadow rules <b>{esc(c['shadow_version'])}</b> against live rules "
        f"<b>{esc(c['live_version'] or '(no rules)')}</b>: <b>{esc(pct(c['agreement']))}</b> of "
        f"{esc(c['compared'])} predictions decided alike"
        + (f"; the canary decided {esc(c['canary'])}" if c["canary"] else "")
        + ".</p>"
    )
    changes = disagreements_table(
        c["disagreements"],
        ["live queue", "shadow queue"],
        "the shadow rules decided every prediction as the live rules did",
    )
    live, shadow = c["outcomes"]["live"], c["outcomes"]["shadow"]
    if live["labelled"]:
        rows = [[name, show(live[key]), show(shadow[key])] for name, key, show in _SCORES]
        if live["queue"]["labelled"]:
            rows.append(["right queue", pct(live["queue"]["accuracy"]), pct(shadow["queue"]["accuracy"])])
        scores = f"<h3>On the {esc(live['labelled'])} predictions with feedback</h3>" + html_table(
            ["", "live", "shadow"], rows
        )
    else:
        scores = '<p class="empty">no feedback came back for these predictions yet: no scores</p>'
    return _section(head + "<h3>Changes</h3>" + changes + scores)


def _section(body: str) -> str:
    return f'<section id="rules-shadow"><h2>Shadow rules</h2>{body}</section>'
