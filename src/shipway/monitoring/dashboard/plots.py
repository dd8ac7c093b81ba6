"""The monitoring plots, as plotly.js figure specs built from the metrics dicts (drift's:
drift_plots.py; the layout they share and the bundle: figures.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipway.monitoring.dashboard.figures import (
    COLOURS,
    GREY,
    Figure,
    base_layout,
    empty_figure,
    plot_text,
    with_legend,
)

__all__ = [
    "calibration",
    "latency",
    "metrics_figures",
    "outcome_series",
    "per_class",
    "quality",
    "residuals",
    "routing",
    "rules_fired",
    "traffic",
]

MAX_CLASSES = 30  # per-class bars beyond this are unreadable; the largest classes are shown
MAX_ROUTES = 8


def _time_axis(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A date axis over the whole window, so that a quiet start or end shows as such."""
    axis: dict[str, Any] = {"type": "date", "hoverformat": "%Y-%m-%d %H:%M UTC"}  # the titles say UTC
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
    title = f"Requests and error rate (per {_step(metrics.get('step_s'))}, UTC)"
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
    return with_legend({"data": data, "layout": layout})


def latency(metrics: Mapping[str, Any]) -> Figure:
    """Median and 99th-percentile latency per bucket and group."""
    title = "Latency p50 and p99 in ms (UTC)"
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
    return with_legend(
        {"data": data, "layout": base_layout(title, xaxis=_time_axis(metrics), yaxis={"title": {"text": "ms"}})}
    )


def quality(metrics: Mapping[str, Any]) -> Figure:
    """Accuracy (solid) and feedback coverage (dotted) per bucket and group; a regression's
    outcomes have no accuracy, so only their coverage is drawn."""
    series = _series(metrics)
    regression = bool((metrics.get("totals") or {}).get("regression"))
    title = (
        "Feedback coverage (UTC); a regression has no accuracy"
        if regression
        else "Accuracy and feedback coverage (UTC)"
    )
    drawn = "coverage" if regression else "accuracy"
    if not any(p.get(drawn) is not None for _, points in series for p in points):
        return empty_figure(title, _why_empty(metrics, "accuracy needs labels sent to the feedback endpoint"))
    data = []
    for i, (name, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        x = [p["ms"] for p in points]
        if not regression:
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
    return with_legend({"data": data, "layout": base_layout(title, xaxis=_time_axis(metrics), yaxis=yaxis)})


def routing(metrics: Mapping[str, Any]) -> Figure:
    """The share of decided predictions sent to each queue, over time."""
    return _shares_over_time(metrics, "routing", "Routing: share of decided predictions per queue (UTC)")


def rules_fired(metrics: Mapping[str, Any]) -> Figure:
    """How often each rule fired, as a share of decided predictions, over time (rule hit rates)."""
    return _shares_over_time(
        metrics, "rules_fired", "Rule hit rates: share of decided predictions each rule fired on (UTC)"
    )


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
    return with_legend({"data": data, "layout": base_layout(title, xaxis=_time_axis(metrics), yaxis=yaxis)})


def per_class(metrics: Mapping[str, Any]) -> Figure:
    """Precision and recall for the classes with the most labelled support."""
    title = "Per-class precision and recall"
    classes = (metrics.get("totals") or {}).get("per_class") or {}
    if not classes:
        return empty_figure(title, _why_empty(metrics, "per-class scores need labels"))
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
    return with_legend({"data": data, "layout": layout})


def calibration(metrics: Mapping[str, Any]) -> Figure:
    """The reliability diagram: accuracy against confidence per bin, and how many fell in each."""
    cal = (metrics.get("totals") or {}).get("calibration") or {}
    bins = [b for b in cal.get("bins") or [] if b.get("count")]
    ece = cal.get("ece")
    title = "Calibration (reliability diagram)" + (f": ECE {ece:.3f}" if isinstance(ece, (int, float)) else "")
    if not bins:
        return empty_figure(title, _why_empty(metrics, "calibration needs labels and a confidence per prediction"))
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
    return with_legend({"data": data, "layout": layout})


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
        "outcome_series": outcome_series(metrics),
    }


# The lines of the outcome metrics per bucket, by output kind: (key in a bucket, name, dash).
_OUTCOME_LINES = {
    "binary": (("roc_auc", "ROC AUC", "solid"), ("pr_auc", "PR AUC", "dash"), ("brier", "Brier score", "dot")),
    "regression": (("mae", "MAE", "solid"), ("rmse", "RMSE", "dash"), ("bias", "bias", "dot")),
    "ranking": (("mrr", "MRR", "solid"), ("hit_rate.1", "hit rate @1", "dash"), ("ndcg.10", "NDCG @10", "dot")),
}


def outcome_series(metrics: Mapping[str, Any]) -> Figure:
    """The output kind's metrics per bucket (a binary score's AUCs and Brier score, a
    regression's errors, a ranking's MRR, hit rate and NDCG), for the whole service."""
    kind = (metrics.get("totals") or {}).get("kind")
    title = f"{str(kind).capitalize()} metrics per {_step(metrics.get('step_s'))} (UTC)"
    points = metrics.get("kind_series") or []
    if kind not in _OUTCOME_LINES or not points:
        return empty_figure(title, "no outcomes in this window")
    half = (metrics.get("step_s") or 0) / 2
    x = [(p["t"] + half) * 1000 for p in points]
    data = []
    for i, (key, name, dash) in enumerate(_OUTCOME_LINES[str(kind)]):
        top, _, sub = key.partition(".")
        y = [(p.get(top) or {}).get(sub) if sub else p.get(top) for p in points]
        line = {"color": COLOURS[i % len(COLOURS)], "dash": dash}
        data.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": x, "y": y, "line": line})
    return with_legend({"data": data, "layout": base_layout(title, xaxis=_time_axis(metrics))})


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


def _why_empty(metrics: Mapping[str, Any], need: str) -> str:
    """Why a plot of the labels is empty: no feedback, or feedback that has no classes."""
    totals = metrics.get("totals") or {}
    if not totals.get("labelled"):
        return f"no feedback yet: {need}"
    if totals.get("regression"):
        return "not for a regression score: see the Regression panel"
    return "the feedback holds no label the outputs can be compared with"


def _step(step_s: Any) -> str:
    if not isinstance(step_s, (int, float)) or step_s <= 0:
        return "bucket"
    for unit, seconds in (("day", 86400), ("h", 3600), ("min", 60)):
        if step_s % seconds == 0:
            n = int(step_s // seconds)
            return f"{n} {unit}" if n != 1 else ("day" if unit == "day" else f"1 {unit}")
    return f"{step_s:g} s"
