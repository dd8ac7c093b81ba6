"""`shipway monitor report`: the dashboard's panels over a fixed window, as one HTML file.

The file is self-contained (stylesheet, script, plotly.js and data inlined; no request
leaves it), so it can be mailed, attached to an incident or archived. Customer text in
it is escaped like on the dashboard; the file itself holds logged inputs, so share it as
you would the store.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from markupsafe import Markup

from shipway.errors import ConfigError
from shipway.monitoring.candidate_view import candidate_html, candidate_json
from shipway.monitoring.dashboard.figures import plotly_js
from shipway.monitoring.dashboard.panels import render_panels
from shipway.monitoring.dashboard.rendering import inline_assets, render
from shipway.monitoring.dashboard.snapshot import Sources, Window, snapshot
from shipway.monitoring.rules_view import rules_html, rules_json

__all__ = ["build_report", "write_report"]


def build_report(sources: Sources, window: Window, *, by: str | None = "model_version", limit: int = 20) -> str:
    """The report's HTML for `window`: the model candidate against the live version, the shadow
    rules against the live rules, totals,
    series plots, drift, alerts, validation, and the slowest and least confident predictions
    with their full records."""
    plotly = plotly_js()  # first, so a missing plotly fails before the store is read
    snap = snapshot(sources, window, by=by, limit=limit)
    body, figures = render_panels(snap, trace_base=None)
    candidate = candidate_json(sources.store, sources.service, window.since, window.until, sources.describe)
    shadow = rules_json(sources.store, sources.service, window.since, window.until, sources.describe, sources.export)
    # candidate_html and rules_html escape every value
    body = Markup(candidate_html(candidate)) + Markup("\n") + Markup(rules_html(shadow)) + Markup("\n") + body
    return render(
        "report.html",
        title=f"{sources.service}: monitoring report",
        service=sources.service,
        span=f"{_utc(window.since)} to {_utc(window.until)}",
        step_s=window.step_s,
        generated=_utc(time.time()),
        panels=Markup(body),
        figures=figures,
        inline=True,
        assets=inline_assets(plotly),
        prefix="",
        base="",
        heading="monitoring report",
    )


def write_report(
    sources: Sources, window: Window, out: Path, *, by: str | None = "model_version", limit: int = 20
) -> Path:
    """Write the report to `out` (folders created); return the path written."""
    html = build_report(sources, window, by=by, limit=limit)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"cannot write the report to {out} ({err.strerror}); pass --out with a writable path"
        ) from err
    return out


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
