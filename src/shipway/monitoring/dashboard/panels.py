"""The panels of the dashboard and the report: a snapshot turned into what panels.html shows.

This module only chooses and formats values; the template places them, and Jinja2 escapes
every one of them (logged inputs are customer text). Plots are placeholders
(`<div data-figure="id">`) filled in by the page's script from the figures returned beside
the HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from shipway.monitoring.dashboard import plots
from shipway.monitoring.dashboard.drift_plots import drift_feature
from shipway.monitoring.dashboard.figures import Figure
from shipway.monitoring.dashboard.rendering import ms, num, pct, render, short_json, utc

__all__ = ["MAX_DRIFT_PLOTS", "render_panels"]

MAX_DRIFT_PLOTS = 24  # a profile of many features would make a page of plots; the table lists all


def render_panels(snap: Mapping[str, Any], *, trace_base: str | None) -> tuple[str, dict[str, Figure]]:
    """The panels' HTML and their figures by placeholder id. With `trace_base` (the dashboard's
    "/dashboard/predictions/"), request ids link to trace pages; without (the report), each
    prediction's full record is inlined."""
    metrics = snap["metrics"]
    figures = plots.metrics_figures(metrics)
    drift, drift_figures = _drift(snap["drift"])
    figures.update(drift_figures)
    totals = metrics.get("totals") or {}
    html = render(
        "panels.html",
        cards=_cards(snap),
        versions=_versions(snap.get("versions") or []),
        by=metrics.get("by") or "none",
        totals=totals,
        outcomes=[
            [name, f"{o.get('count', 0):,}", num(o.get("mean"))]
            for name, o in sorted((totals.get("outcomes") or {}).items())
        ],
        kind=_kind(totals),
        routing=_routing(totals),
        drift=drift,
        alerts=_alerts(snap["alerts"]),
        validation=_validation(snap["validation"]),
        predictions=[
            ("slowest", "Slowest predictions", _predictions(snap["slowest"], trace_base)),
            ("uncertain", "Most uncertain predictions", _predictions(snap["uncertain"], trace_base)),
        ],
        linked=trace_base is not None,
    )
    return html, figures


def _cards(snap: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(key, label, value, detail) of each summary card."""
    t = snap["metrics"].get("totals") or {}
    lat = t.get("latency_ms") or {}
    top = t.get("top_k") or {}
    ece = (t.get("calibration") or {}).get("ece")
    firing = snap.get("firing") or []
    return [
        ("requests", "requests", f"{t.get('requests', 0):,}", ""),
        ("errors", "errors", f"{t.get('errors', 0):,}", pct(t.get("error_rate"))),
        ("p50", "latency p50", ms(lat.get("p50")), f"mean {ms(lat.get('mean'))}"),
        ("p99", "latency p99", ms(lat.get("p99")), f"p90 {ms(lat.get('p90'))}"),
        ("labelled", "with feedback", f"{t.get('labelled', 0):,}", f"coverage {pct(t.get('coverage'))}"),
        ("accuracy", "accuracy", *_accuracy(t, top)),
        ("ece", "calibration error", f"{ece:.3f}" if isinstance(ece, (int, float)) else "n/a", "ECE"),
        ("alerts", "alerts firing", str(len(firing)), ", ".join(firing)),
    ]


def _accuracy(t: Mapping[str, Any], top: Mapping[str, Any]) -> tuple[str, str]:
    """The accuracy card's value and detail: "no feedback yet" only when no label came back."""
    if t.get("accuracy") is not None:
        binary = t.get("binary") or {}
        if binary.get("threshold") is not None:
            return pct(t["accuracy"]), f"at threshold {binary['threshold']:g}"
        return pct(t["accuracy"]), f"top-3 {pct(top.get('3'))}" if top.get("3") is not None else ""
    if not t.get("labelled"):
        return "no feedback yet", ""
    if t.get("regression"):
        return "n/a", "a regression: see MAE below"
    return "n/a", "no label could be read from the outputs"


def _versions(pairs: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per model and rules version pair that answered in the window."""
    return [
        [
            p.get("model_version") or "none",
            p.get("rules_version") or "none",
            f"{p.get('requests', 0):,}",
            f"{p.get('labelled', 0):,}",
            utc(p.get("first")),
            utc(p.get("last")),
        ]
        for p in pairs
    ]


def _kind(t: Mapping[str, Any]) -> dict[str, Any] | None:
    """The metrics of a score or ranked output (docs/feedback.md), under its own heading."""
    if b := t.get("binary"):
        bound = b.get("auc_bound")
        rows = [
            ["ROC AUC", num(b.get("roc_auc")) + (f" (binned, within {bound:.2g})" if bound else "")],
            ["PR AUC (average precision)", num(b.get("pr_auc"))],
            ["Brier score", num(b.get("brier"))],
            ["log loss", num(b.get("log_loss"))],
            [f"accuracy at threshold {b.get('threshold')}", pct(b.get("accuracy"))],
            [
                f"precision / recall of {b.get('positive_label', '1')}",
                f"{pct(b.get('precision'))} / {pct(b.get('recall'))}",
            ],
            ["outcomes (positives)", f"{b.get('count', 0):,} ({b.get('positives', 0):,})"],
        ]
        positive, negative = b.get("positive_label", "1"), b.get("negative_label", "0")
        named = f"{positive} (1) and {negative} (0)" if positive != "1" else "0 and 1"
        note = f"Scores against outcomes {named}."
        return {"key": "binary", "title": "Binary score", "head": ["metric", "value"], "rows": rows, "note": note}
    if r := t.get("regression"):
        rows = [
            ["MAE", num(r.get("mae"))],
            ["RMSE", num(r.get("rmse"))],
            ["bias (mean score minus mean outcome)", num(r.get("bias"))],
            ["mean outcome", num(r.get("mean_actual"))],
            ["outcomes", f"{r.get('count', 0):,}"],
        ]
        return {"key": "regression", "title": "Regression", "head": ["metric", "value"], "rows": rows}
    if r := t.get("ranking"):
        rows = [
            [name, f"{m.get('count', 0):,}", num(m.get("mrr")), pct(m.get("listed"))]
            + [f"{pct(m['hit_rate'].get(k))} / {num(m['ndcg'].get(k))}" for k in ("1", "3", "5", "10")]
            for name, m in [("label", r), *sorted((r.get("outcomes") or {}).items())]
            if m.get("count")
        ]
        head = ["outcome", "count", "MRR", "listed", "@1 hit / NDCG", "@3", "@5", "@10"]
        return {"key": "ranking", "title": "Ranking", "head": head, "rows": rows}
    return None


def _routing(t: Mapping[str, Any]) -> dict[str, Any]:
    queues, fired = t.get("routing") or {}, t.get("rules_fired") or {}
    tables = []
    for head, shares in (("queue", queues), ("rule fired", fired)):
        rows = [[label, pct(share)] for label, share in sorted(shares.items(), key=lambda kv: -kv[1])]
        if rows:
            tables.append({"head": [head, "share of decided predictions"], "rows": rows})
    review = t.get("review_rate")
    return {"any": bool(queues or fired), "tables": tables, "review": pct(review) if review is not None else ""}


def _drift(drift: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Figure]]:
    status = drift.get("status")
    if status != "ok":
        return {"status": status, "message": drift.get("message")}, {}
    report = drift.get("report") or {}
    summary = report.get("summary") or {}
    results = list(report.get("results") or [])
    features = sorted(report.get("features") or [], key=lambda f: (f.get("drifted") is not True, str(f.get("feature"))))
    rows = [
        [
            r.get("feature"),
            r.get("kind"),
            r.get("method"),
            num(r.get("value")),
            num(r.get("threshold")),
            num(r.get("p_value")),
            r.get("n_reference"),
            r.get("n_current"),
            "DRIFTED" if r.get("drifted") else ("no verdict" if r.get("drifted") is None else "ok"),
            r.get("note") or "",
        ]
        for r in sorted(results, key=lambda r: (r.get("drifted") is not True, str(r.get("feature"))))
    ]
    figures = {}
    for i, feature in enumerate(features[:MAX_DRIFT_PLOTS]):
        own = [r for r in results if r.get("feature") == feature.get("feature")]
        figures[f"drift-{i}"] = drift_feature(feature, own)
    n_drifted, n_features = summary.get("n_drifted", 0), summary.get("n_features", len(features))
    window = report.get("window") or {}
    line = (
        f"{n_drifted} of {n_features} features drifted"
        + (" (dataset drift)" if summary.get("dataset_drift") else "")
        + f", over {window.get('n_rows', '?')} logged predictions against a reference of "
        + f"{(report.get('profile') or {}).get('n_rows', '?')} rows"
    )
    head = ["feature", "kind", "method", "value", "threshold", "p-value", "n reference", "n current", "verdict", "note"]
    context = {
        "status": "ok",
        "line": line,
        "n_drifted": n_drifted,
        "head": head,
        "rows": rows,
        "plots": list(figures),
        "cut": MAX_DRIFT_PLOTS if len(features) > MAX_DRIFT_PLOTS else None,
    }
    return context, figures


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return [
        [utc(a["ts"]), a["key"], "FIRING" if a["firing"] else "recovered", short_json(a.get("detail"), 200)]
        for a in alerts
    ]


def _validation(validation: Mapping[str, Any]) -> dict[str, Any]:
    if validation.get("status") != "ok":
        return {"status": validation.get("status"), "message": validation.get("message")}
    report = validation["report"]
    counts = report.get("counts") or {}
    when = utc(report.get("started_at") or validation.get("mtime"))
    verdict = "all cases pass" if report.get("ok") else "FAILING"
    targets = ", ".join(str(t.get("target", "")) for t in report.get("targets") or [] if isinstance(t, dict))
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    line = f"{when}: {verdict} ({summary or 'no cases'})" + (f" against {targets}" if targets else "")
    failing = [r for r in report["results"] if isinstance(r, dict) and r.get("status") in ("failed", "error")]
    return {
        "status": "ok",
        "ok": bool(report.get("ok")),
        "line": line,
        "rows": [[r.get("id"), r.get("status"), r.get("reason")] for r in failing[:50]],
        "path": validation["path"],
    }


def _predictions(rows: Sequence[Mapping[str, Any]], trace_base: str | None) -> list[dict[str, Any]]:
    out = []
    for p in rows:
        rid = str(p.get("request_id", ""))
        conf = p.get("confidence")
        out.append(
            {
                "time": utc(p.get("ts")),
                "request_id": rid,
                "href": f"{trace_base}{quote(rid, safe='')}?ts={p.get('ts')!r}" if trace_base is not None else None,
                "full": "" if trace_base is not None else _full(p),
                "latency": ms(p.get("latency_ms")),
                "confidence": num(conf) if conf is not None else "n/a",
                "model_version": p.get("model_version") or "",
                "rules_version": p.get("rules_version") or "",
                "inputs": short_json(p.get("inputs")),
                "outputs": short_json(p.get("outputs")),
            }
        )
    return out


def _full(p: Mapping[str, Any]) -> str:
    """The report's inlined record: it links to no trace page."""
    return orjson.dumps({"inputs": p.get("inputs"), "outputs": p.get("outputs")}, option=orjson.OPT_INDENT_2).decode()
