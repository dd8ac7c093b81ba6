"""Drift plots: a feature's reference distribution against the current window's.

Built from one entry of `DriftReport.to_dict()["features"]` (its `plot` data) and that
feature's results, in the same plotly.js figure format as the other plots (plots.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipway.monitoring.dashboard.figures import TOOLBAR_PX, Figure, base_layout, empty_figure, plot_text

__all__ = ["drift_feature"]

REFERENCE, CURRENT = "#999999", "#0072B2"


def drift_feature(feature: Mapping[str, Any], results: Sequence[Mapping[str, Any]] = ()) -> Figure:
    """Reference against current for one feature (a `DriftReport.to_dict()["features"]` entry):
    shares per histogram bin on the reference's edges for numbers and text lengths, shares per
    category for categories; the title gives the verdict and each method's statistic."""
    title = _drift_title(feature, results)
    plot = feature.get("plot") or {}
    reference, current = list(plot.get("reference") or []), list(plot.get("current") or [])
    edges, categories = plot.get("edges"), plot.get("categories")
    if edges is not None and len(edges) == len(reference) + 1 and len(current) == len(reference):
        centres, widths = _bins(edges, len(reference))
        # Current values beyond the reference's range get a bar of their own on each side,
        # as wide as the neighbouring bin: often they are the drift.
        below, above = float(plot.get("current_below") or 0), float(plot.get("current_above") or 0)
        if below:
            centres, widths = [centres[0] - widths[0], *centres], [widths[0], *widths]
            reference, current = [0, *reference], [below, *current]
        if above:
            centres, widths = [*centres, centres[-1] + widths[-1]], [*widths, widths[-1]]
            reference, current = [*reference, 0], [*current, above]
        traces = [
            _shares("reference", centres, reference, REFERENCE, widths),
            _shares("current", centres, current, CURRENT, widths),
        ]
        outside = " and ".join(f"{int(n)} {side}" for n, side in ((below, "below"), (above, "above")) if n)
        axis = plot_text(feature.get("feature", "")) + (f" ({outside} the reference range)" if outside else "")
        layout = base_layout(title, barmode="overlay", xaxis={"title": {"text": axis}}, hovermode="closest")
    elif categories is not None and len(categories) == len(reference) == len(current):
        names = [plot_text(c) for c in categories]
        other = plot.get("other") or {}
        if other.get("categories"):
            names.append(f"{other['categories']} other categories")
            reference.append(other.get("reference", 0))
            current.append(other.get("current", 0))
        traces = [_shares("reference", names, reference, REFERENCE), _shares("current", names, current, CURRENT)]
        layout = base_layout(
            title, barmode="group", xaxis={"type": "category", "automargin": True}, hovermode="closest"
        )
    else:
        return empty_figure(title, "no distribution to plot for this feature")
    layout["yaxis"] = {"tickformat": ".0%", "title": {"text": "share"}}
    layout["margin"]["t"] = TOOLBAR_PX + 44  # a title of two lines, under the toolbar
    layout["height"] = 340
    # Two traces need no legend row under long tick labels: it sits in the plot's corner.
    layout["legend"] = {"x": 1, "xanchor": "right", "y": 1, "yanchor": "top", "bgcolor": "rgba(255,255,255,0.7)"}
    return {"data": traces, "layout": layout}


def _drift_title(feature: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> str:
    drifted = feature.get("drifted")
    verdict = "no verdict" if drifted is None else ("DRIFTED" if drifted else "no drift")
    parts = []
    for r in results:
        value, threshold = r.get("value"), r.get("threshold")
        if r.get("p_value") is not None:
            shown = f"{r['method']} p={r['p_value']:.3g} (<{threshold:g})"
        elif isinstance(value, (int, float)):
            shown = f"{r['method']} {value:.3g} (≥{threshold:g})"
        else:
            shown = f"{r['method']} n/a"
        parts.append(f"<b>{shown}</b>" if r.get("drifted") else shown)
    name = plot_text(feature.get("feature", "?"))
    return f"{name} ({plot_text(feature.get('kind', ''))}): {verdict}<br><sup>{' · '.join(parts)}</sup>"


def _bins(edges: Sequence[float], n: int) -> tuple[list[float], list[float]]:
    """Bar centres and widths; an open outer bin (±inf) is drawn as wide as its neighbour."""
    finite = [math.nan if e is None else float(e) for e in edges]  # JSON writes ±inf as null
    inner = [e for e in finite if math.isfinite(e)]
    step = (inner[-1] - inner[0]) / max(1, len(inner) - 1) if len(inner) > 1 else 1.0
    if not math.isfinite(finite[0]):
        finite[0] = (inner[0] if inner else 0.0) - step
    if not math.isfinite(finite[-1]):
        finite[-1] = (inner[-1] if inner else 0.0) + step
    centres = [(finite[i] + finite[i + 1]) / 2 for i in range(n)]
    widths = [finite[i + 1] - finite[i] for i in range(n)]
    return centres, widths


def _shares(
    name: str,
    x: Sequence[Any],
    counts: Iterable[float],
    colour: str,
    widths: Sequence[float] | None = None,
) -> dict[str, Any]:
    counts = [float(c) for c in counts]
    total = sum(counts) or 1.0
    trace: dict[str, Any] = {
        "type": "bar",
        "name": f"{name} (n={int(total)})",
        "x": list(x),
        "y": [c / total for c in counts],
        "marker": {"color": colour, "opacity": 0.6},
    }
    if widths is not None:
        trace["width"] = list(widths)
    return trace
