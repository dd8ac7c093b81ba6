"""The monitoring plots, as plotly.js figure specs built from the metrics dicts (drift's: drift_plots.py).

Why plotly: the dashboard's plots are for looking closely (hover a point for its value,
zoom on an incident, hide a version in the legend), which static SVG from matplotlib
cannot offer; plotly.js renders SVG in the browser, and its bundle ships inside the
`plotly` Python package, so the report inlines it and the dashboard serves it without a
CDN. The figures are built here as plain dicts in plotly.js's JSON figure format
(https://plotly.com/javascript/reference/) rather than through plotly's Python graph
objects: the service never imports plotly's validators to answer a request, and only
`plotly_js()` needs the package at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from shipway.errors import ConfigError

__all__ = [
    "Figure",
    "base_layout",
    "calibration",
    "empty_figure",
    "latency",
    "metrics_figures",
    "per_class",
    "plot_text",
    "plotly_js",
    "quality",
    "residuals",
    "routing",
    "rules_fired",
    "traffic",
]

Figure = dict[str, Any]  # {"data": [traces], "layout": {...}} as plotly.js takes them

# A qualitative palette that stays readable for the common colour-vision deficiencies
# (Okabe and Ito, "Color Universal Design", 2008).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
GREY = "#999999"
MAX_CLASSES = 30  # per-class bars beyond this are unreadable; the largest classes are shown
MAX_ROUTES = 8


def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly package (no CDN, no network)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as err:
        raise ConfigError(
            f"the monitoring plots need plotly, which is not installed ({err}); "
            "install it with pip install 'shipway[monitoring]'"
        ) from err
    return str(get_plotlyjs())


def base_layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 14}, "x": 0, "xanchor": "left"},
        "height": 300,
        "margin": {"l": 56, "r": 56, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified",
        "colorway": list(COLOURS),
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "uirevision": "keep",  # a refresh keeps the reader's zoom and hidden traces
    }
    layout.update(extra)
    return layout


def empty_figure(title: str, message: str) -> Figure:
    """A figure that says why there is nothing to plot, rather than empty axes."""
    return {
        "data": [],
        "layout": base_layout(
            title,
            height=160,
            xaxis={"visible": False},
            yaxis={"visible": False},
            annotations=[{"text": message, "showarrow": False, "font": {"size": 13, "color": "#666"}}],
        ),
    }


def _time_axis(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A date axis over the whole window, so that a quiet start or end shows as such."""
    axis: dict[str, Any] = {"type": "date", "title": {"text": "UTC"}}
    since, until = metrics.get("since"), metrics.get("until")
    if isinstance(since, (int, float)) and isinstance(until, (int, float)):
        # Buckets are aligned to the step, so the first and the current one reach past the
        # window: the axis covers them whole, or their points (at mid-bucket) fall off it.
        step = float(metrics.get("step_s") or 0)
        starts = [p["t"] for series in metrics.get("series") or [] for p in series.get("points") or []]
        start = min([since, *starts])
        end = max([until, *(t + step for t in starts)])
        axis["range"] = [start * 1000, end * 1000]
    return axis


def _group_name(group: Mapping[str, Any]) -> str:
    return plot_text(", ".join(f"{value}" for value in group.values() if value not in (None, "")) or "all")


def _series(metrics: Mapping[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(name, points) per group, each point at the middle of its bucket, in milliseconds as
    plotly date axes take them."""
    half = float(metrics.get("step_s") or 0) / 2
    out = []
    for series in metrics.get("series") or []:
        points = [{**p, "ms": (p["t"] + half) * 1000} for p in series.get("points") or []]
        if points:
            out.append((_group_name(series.get("group") or {}), points))
    return out


def traffic(metrics: Mapping[str, Any]) -> Figure:
    """Requests per bucket (stacked per group) and the error rate on a second axis."""
    title = f"Requests and error rate (per {_step(metrics.get('step_s'))})"
    series = _series(metrics)
    if not series:
        return empty_figure(title, "no predictions logged in this window")
    data: list[dict[str, Any]] = []
    for i, (name, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        x = [p["ms"] for p in points]
        data.append({"type": "bar", "name": f"requests {name}", "x": x, "y": [p["requests"] for p in points]})
        data[-1]["marker"] = {"color": colour, "opacity": 0.55}
        data[-1]["width"] = float(metrics.get("step_s") or 0) * 1000 * 0.9
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"error rate {name}",
                "x": x,
                "y": [p.get("error_rate") for p in points],
                "yaxis": "y2",
                "line": {"color": colour, "width": 2},
                "marker": {"size": 4},
            }
        )
    layout = base_layout(
        title,
        barmode="stack",
        xaxis=_time_axis(metrics),
        yaxis={"title": {"text": "requests"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "error rate"}, "overlaying": "y", "side": "right", "tickformat": ".1%"},
    )
    layout["yaxis2"]["rangemode"] = "tozero"
    return {"data": data, "layout": layout}


def latency(metrics: Mapping[str, Any]) -> Figure:
    """Median and 99th-percentile latency per bucket and group."""
    title = "Latency p50 and p99 (ms)"
    series = _series(metrics)
    if not series:
        return empty_figure(title, "no predictions logged in this window")
    data = []
    for i, (name, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        x = [p["ms"] for p in points]
        for quantile, dash in (("p50", "solid"), ("p99", "dot")):
            y = [(p.get("latency_ms") or {}).get(quantile) for p in points]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{quantile} {name}",
                    "x": x,
                    "y": y,
                    "line": {"color": colour, "dash": dash},
                }
            )
    return {"data": data, "layout": base_layout(title, xaxis=_time_axis(metrics), yaxis={"title": {"text": "ms"}})}


def quality(metrics: Mapping[str, Any]) -> Figure:
    """Accuracy (solid) and feedback coverage (dotted) per bucket and group."""
    title = "Accuracy and feedback coverage"
    series = _series(metrics)
    if not any(p.get("accuracy") is not None for _, points in series for p in points):
        return empty_figure(title, "no feedback yet: accuracy needs labels sent to the feedback endpoint")
    data = []
    for i, (name, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        x = [p["ms"] for p in points]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"accuracy {name}",
                "x": x,
                "y": [p.get("accuracy") for p in points],
                "line": {"color": colour},
                "connectgaps": False,
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"coverage {name}",
                "x": x,
                "y": [p.get("coverage") for p in points],
                "line": {"color": colour, "dash": "dot"},
            }
        )
    yaxis = {"range": [0, 1.02], "tickformat": ".0%"}
    return {"data": data, "layout": base_layout(title, xaxis=_time_axis(metrics), yaxis=yaxis)}


def routing(metrics: Mapping[str, Any]) -> Figure:
    """The share of decided predictions sent to each queue, over time."""
    return _shares_over_time(metrics, "routing", "Routing: share of decided predictions per queue")


def rules_fired(metrics: Mapping[str, Any]) -> Figure:
    """How often each rule fired, as a share of decided predictions, over time (rule hit rates)."""
    return _shares_over_time(metrics, "rules_fired", "Rule hit rates: share of decided predictions each rule fired on")


def _shares_over_time(metrics: Mapping[str, Any], key: str, title: str) -> Figure:
    series = _series(metrics)
    totals = (metrics.get("totals") or {}).get(key) or {}
    if not totals:
        return empty_figure(title, "no rules decisions logged in this window")
    labels = sorted(totals, key=lambda k: -totals[k])[:MAX_ROUTES]
    # One line per label, summing the groups: a queue's or rule's rate, whatever the version.
    buckets: dict[float, dict[str, float]] = {}
    for _, points in series:
        for p in points:
            slot = buckets.setdefault(p["ms"], {})
            n = float((p.get("requests") or 0) - (p.get("errors") or 0))
            slot[""] = slot.get("", 0.0) + n
            for label, share in (p.get(key) or {}).items():
                slot[label] = slot.get(label, 0.0) + share * n
    x = sorted(buckets)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": f"{plot_text(label)} ({totals[label]:.1%})",
            "x": x,
            "y": [buckets[t].get(label, 0.0) / buckets[t][""] if buckets[t][""] else None for t in x],
        }
        for label in labels
    ]
    yaxis = {"tickformat": ".0%", "rangemode": "tozero"}
    return {"data": data, "layout": base_layout(title, xaxis=_time_axis(metrics), yaxis=yaxis)}


def per_class(metrics: Mapping[str, Any]) -> Figure:
    """Precision and recall for the classes with the most labelled support."""
    title = "Per-class precision and recall"
    classes = (metrics.get("totals") or {}).get("per_class") or {}
    if not classes:
        return empty_figure(title, "no feedback yet: per-class scores need labels")
    shown = sorted(classes, key=lambda c: (-(classes[c].get("support") or 0), c))[:MAX_CLASSES]
    shown.reverse()  # horizontal bars draw bottom-up; the largest class goes on top
    if len(classes) > len(shown):
        title += f" (the {len(shown)} largest of {len(classes)} classes)"
    labels = [f"{plot_text(c)} (n={classes[c].get('support', 0)})" for c in shown]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": key,
            "y": labels,
            "x": [classes[c].get(key) for c in shown],
            "marker": {"color": colour},
        }
        for key, colour in (("recall", COLOURS[1]), ("precision", COLOURS[0]))
    ]
    layout = base_layout(
        title,
        barmode="group",
        height=max(300, 60 + 26 * len(shown)),
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        yaxis={"automargin": True},
        hovermode="closest",
    )
    layout["margin"]["l"] = 160
    return {"data": data, "layout": layout}


def calibration(metrics: Mapping[str, Any]) -> Figure:
    """The reliability diagram: accuracy against confidence per bin, and how many fell in each."""
    cal = (metrics.get("totals") or {}).get("calibration") or {}
    bins = [b for b in cal.get("bins") or [] if b.get("count")]
    ece = cal.get("ece")
    title = "Calibration (reliability diagram)" + (f": ECE {ece:.3f}" if isinstance(ece, (int, float)) else "")
    if not bins:
        return empty_figure(title, "no feedback yet: calibration needs labels and a confidence per prediction")
    data = [
        {
            "type": "bar",
            "name": "predictions",
            "x": [(b["lo"] + b["hi"]) / 2 for b in bins],
            "width": [b["hi"] - b["lo"] for b in bins],
            "y": [b["count"] for b in bins],
            "yaxis": "y2",
            "marker": {"color": GREY, "opacity": 0.3},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "perfect calibration",
            "x": [0, 1],
            "y": [0, 1],
            "line": {"color": "#666", "dash": "dash", "width": 1},
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "accuracy",
            "x": [b["confidence"] for b in bins],
            "y": [b["accuracy"] for b in bins],
            "line": {"color": COLOURS[0]},
        },
    ]
    layout = base_layout(
        title,
        hovermode="closest",
        xaxis={"range": [0, 1], "title": {"text": "confidence"}},
        yaxis={"range": [0, 1.02], "title": {"text": "accuracy"}},
        yaxis2={"overlaying": "y", "side": "right", "title": {"text": "predictions"}, "showgrid": False},
    )
    return {"data": data, "layout": layout}


def metrics_figures(metrics: Mapping[str, Any]) -> dict[str, Figure]:
    """Every plot of the metrics panel, by the id the page places it under."""
    return {
        "traffic": traffic(metrics),
        "latency": latency(metrics),
        "quality": quality(metrics),
        "routing": routing(metrics),
        "rules_fired": rules_fired(metrics),
        "per_class": per_class(metrics),
        "calibration": calibration(metrics),
        "residuals": residuals(metrics),
    }


def residuals(metrics: Mapping[str, Any]) -> Figure:
    """The residuals (outcome minus score) of a regression, on signed log-spaced bins."""
    title = "Residuals: outcome minus score"
    bins = ((metrics.get("totals") or {}).get("regression") or {}).get("residuals") or []
    if not bins:
        return empty_figure(title, "no numeric outcomes yet")
    data = [
        {
            "type": "bar",
            "name": "outcomes",
            "x": [f"{b['lo']:.3g} to {b['hi']:.3g}" for b in bins],
            "y": [b["count"] for b in bins],
            "marker": {"color": COLOURS[0]},
        }
    ]
    return {"data": data, "layout": base_layout(title, hovermode="closest", xaxis={"type": "category"})}


def plot_text(value: Any) -> str:
    """User data placed in plot text. plotly.js reads a subset of HTML there (<a href>, <b>,
    entities) and decodes entities, so `<`, `>` and `&` are escaped to show as typed."""
    return escape(str(value), quote=False)


def _step(step_s: Any) -> str:
    if not isinstance(step_s, (int, float)) or step_s <= 0:
        return "bucket"
    for unit, seconds in (("day", 86400), ("h", 3600), ("min", 60)):
        if step_s % seconds == 0:
            n = int(step_s // seconds)
            return f"{n} {unit}" if n != 1 else ("day" if unit == "day" else f"1 {unit}")
    return f"{step_s:g} s"
