"""The panels of the dashboard and the report, rendered to HTML from a snapshot.

Rendered on the server, so that one piece of code escapes every value: logged inputs are
customer text, and `esc` is applied to every value that came from the store, a profile
or a validation report before it reaches the page. Plots are placeholders
(`<div data-figure="id">`) filled in by the page's script from the figures returned beside
the HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

import orjson

from shipway.monitoring import plots
from shipway.monitoring.drift_plots import drift_feature
from shipway.monitoring.plots import Figure

__all__ = ["esc", "render_panels", "short_json"]

MAX_DRIFT_PLOTS = 24  # a profile of many features would make a page of plots; the table lists all
TEXT_CHARS = 140


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def render_panels(snap: Mapping[str, Any], *, trace_base: str | None) -> tuple[str, dict[str, Figure]]:
    """The panels' HTML and their figures by placeholder id. With `trace_base` (the dashboard's
    "/dashboard/predictions/"), request ids link to trace pages; without (the report), each
    prediction's full record is inlined."""
    metrics = snap["metrics"]
    figures = plots.metrics_figures(metrics)
    drift_html, drift_figures = _drift(snap["drift"])
    figures.update(drift_figures)
    parts = [
        _summary(snap),
        _versions(metrics),
        _section("traffic", "Traffic and latency", _plot("traffic") + _plot("latency")),
        _quality(metrics),
        _kind(metrics),
        _routing(metrics),
        drift_html,
        _alerts(snap["alerts"]),
        _validation(snap["validation"]),
        _predictions("slowest", "Slowest predictions", snap["slowest"], trace_base),
        _predictions("uncertain", "Most uncertain predictions", snap["uncertain"], trace_base),
    ]
    return "\n".join(parts), figures


def _section(key: str, title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<section id="{key}"><h2>{esc(title)}</h2>{note_html}{body}</section>'


def _plot(key: str) -> str:
    return f'<div class="plot" data-figure="{esc(key)}"></div>'


def _card(key: str, label: str, value: str, detail: str = "") -> str:
    small = f"<small>{esc(detail)}</small>" if detail else ""
    return f'<div class="card" data-metric="{esc(key)}"><span>{esc(label)}</span><b>{esc(value)}</b>{small}</div>'


def _summary(snap: Mapping[str, Any]) -> str:
    t = snap["metrics"].get("totals") or {}
    lat = t.get("latency_ms") or {}
    top = t.get("top_k") or {}
    ece = (t.get("calibration") or {}).get("ece")
    cards = [
        _card("requests", "requests", f"{t.get('requests', 0):,}"),
        _card("errors", "errors", f"{t.get('errors', 0):,}", _pct(t.get("error_rate"))),
        _card("p50", "latency p50", _ms(lat.get("p50")), f"mean {_ms(lat.get('mean'))}"),
        _card("p99", "latency p99", _ms(lat.get("p99")), f"p90 {_ms(lat.get('p90'))}"),
        _card("labelled", "with feedback", f"{t.get('labelled', 0):,}", f"coverage {_pct(t.get('coverage'))}"),
        _card(
            "accuracy",
            "accuracy",
            _pct(t.get("accuracy")) if t.get("accuracy") is not None else "no feedback yet",
            f"top-3 {_pct(top.get('3'))}" if top.get("3") is not None else "",
        ),
        _card("ece", "calibration error", f"{ece:.3f}" if isinstance(ece, (int, float)) else "n/a", "ECE"),
        _card("alerts", "alerts firing", str(len(snap.get("firing") or [])), ", ".join(snap.get("firing") or [])),
    ]
    return _section("summary", "Summary", f'<div class="cards">{"".join(cards)}</div>')


def _versions(metrics: Mapping[str, Any]) -> str:
    rows = []
    for series in metrics.get("series") or []:
        points = series.get("points") or []
        group = series.get("group") or {}
        requests = sum(p.get("requests") or 0 for p in points)
        labelled = sum(p.get("labelled") or 0 for p in points)
        first = min((p["t"] for p in points if p.get("requests")), default=None)
        last = max((p["t"] for p in points if p.get("requests")), default=None)
        rows.append(
            [
                group.get("model_version", "all"),
                group.get("rules_version", "") if "rules_version" in group else "",
                f"{requests:,}",
                f"{labelled:,}",
                _time(first),
                _time(last),
            ]
        )
    by = metrics.get("by") or "none"
    head = ["model version", "rules version", "requests", "with feedback", "first bucket", "last bucket"]
    body = _table(head, rows) if rows else '<p class="empty">no predictions logged in this window</p>'
    return _section("versions", "Versions and sample sizes", body, note=f"split by {esc(by)}")


def _quality(metrics: Mapping[str, Any]) -> str:
    t = metrics.get("totals") or {}
    note = ""
    if not t.get("labelled"):
        note = (
            "<b>No feedback yet.</b> Accuracy, per-class scores and calibration need the true labels: "
            "send them to the store's feedback (see docs/monitoring.md)."
        )
    outcomes = t.get("outcomes") or {}
    rows = [[name, f"{o.get('count', 0):,}", _num(o.get("mean"))] for name, o in sorted(outcomes.items())]
    table = _table(["outcome", "count", "mean"], rows) if rows else ""
    body = _plot("quality") + '<div class="row">' + _plot("per_class") + _plot("calibration") + "</div>" + table
    return _section("quality", "Model quality", body, note)


def _kind(metrics: Mapping[str, Any]) -> str:
    """The metrics of a score or ranked output (docs/feedback.md), under its own heading."""
    t = metrics.get("totals") or {}
    if b := t.get("binary"):
        bound = b.get("auc_bound")
        rows = [
            ["ROC AUC", _num(b.get("roc_auc")) + (f" (binned, within {bound:.2g})" if bound else "")],
            ["PR AUC (average precision)", _num(b.get("pr_auc"))],
            ["Brier score", _num(b.get("brier"))],
            ["log loss", _num(b.get("log_loss"))],
            [f"accuracy at threshold {b.get('threshold')}", _pct(b.get("accuracy"))],
            ["precision / recall of 1", f"{_pct(b.get('precision'))} / {_pct(b.get('recall'))}"],
            ["outcomes (positives)", f"{b.get('count', 0):,} ({b.get('positives', 0):,})"],
        ]
        note = "Scores against outcomes 0 and 1. The per-class bars above use the threshold; the calibration plot shows the share of 1s per score tenth."
        return _section("binary", "Binary score", _table(["metric", "value"], rows), note)
    if r := t.get("regression"):
        rows = [
            ["MAE", _num(r.get("mae"))],
            ["RMSE", _num(r.get("rmse"))],
            ["bias (mean score minus mean outcome)", _num(r.get("bias"))],
            ["mean outcome", _num(r.get("mean_actual"))],
            ["outcomes", f"{r.get('count', 0):,}"],
        ]
        return _section("regression", "Regression", _table(["metric", "value"], rows) + _plot("residuals"))
    if r := t.get("ranking"):
        rows = [
            [name, f"{m.get('count', 0):,}", _num(m.get("mrr")), _pct(m.get("listed"))]
            + [f"{_pct(m['hit_rate'].get(k))} / {_num(m['ndcg'].get(k))}" for k in ("1", "3", "5", "10")]
            for name, m in [("label", r), *sorted((r.get("outcomes") or {}).items())]
            if m.get("count")
        ]
        head = ["outcome", "count", "MRR", "listed", "@1 hit / NDCG", "@3", "@5", "@10"]
        body = _table(head, rows) if rows else '<p class="empty">no feedback yet</p>'
        return _section("ranking", "Ranking", body, "Hit rate and NDCG at k of the item each outcome names.")
    return ""


def _routing(metrics: Mapping[str, Any]) -> str:
    totals = metrics.get("totals") or {}
    queues, fired = totals.get("routing") or {}, totals.get("rules_fired") or {}
    if not queues and not fired:
        return _section("routing", "Routing and rules", '<p class="empty">no rules decisions logged in this window</p>')
    tables = []
    for head, shares in (("queue", queues), ("rule fired", fired)):
        rows = [[label, _pct(share)] for label, share in sorted(shares.items(), key=lambda kv: -kv[1])]
        if rows:
            tables.append(_table([head, "share of decided predictions"], rows))
    review = totals.get("review_rate")
    note = f"sent for review: {_pct(review)}" if review is not None else ""
    body = '<div class="row">' + _plot("routing") + _plot("rules_fired") + "</div>"
    body += '<div class="row">' + "".join(tables) + "</div>"
    return _section("routing", "Routing and rules", body, esc(note))


def _drift(drift: Mapping[str, Any]) -> tuple[str, dict[str, Figure]]:
    status = drift.get("status")
    if status != "ok":
        css = "empty" if status == "no_profile" else "error"
        return _section("drift", "Drift", f'<p class="{css}">{esc(drift.get("message"))}</p>'), {}
    report = drift.get("report") or {}
    summary = report.get("summary") or {}
    results = list(report.get("results") or [])
    features = sorted(report.get("features") or [], key=lambda f: (f.get("drifted") is not True, str(f.get("feature"))))
    rows = [
        [
            r.get("feature"),
            r.get("kind"),
            r.get("method"),
            _num(r.get("value")),
            _num(r.get("threshold")),
            _num(r.get("p_value")),
            r.get("n_reference"),
            r.get("n_current"),
            "DRIFTED" if r.get("drifted") else ("no verdict" if r.get("drifted") is None else "ok"),
            r.get("note") or "",
        ]
        for r in sorted(results, key=lambda r: (r.get("drifted") is not True, str(r.get("feature"))))
    ]
    figures, placeholders = {}, []
    for i, feature in enumerate(features[:MAX_DRIFT_PLOTS]):
        key = f"drift-{i}"
        own = [r for r in results if r.get("feature") == feature.get("feature")]
        figures[key] = drift_feature(feature, own)
        placeholders.append(_plot(key))
    n_drifted, n_features = summary.get("n_drifted", 0), summary.get("n_features", len(features))
    window = report.get("window") or {}
    line = (
        f"{n_drifted} of {n_features} features drifted"
        + (" (dataset drift)" if summary.get("dataset_drift") else "")
        + f", over {window.get('n_rows', '?')} logged predictions against a reference of "
        + f"{(report.get('profile') or {}).get('n_rows', '?')} rows"
    )
    head = ["feature", "kind", "method", "value", "threshold", "p-value", "n reference", "n current", "verdict", "note"]
    body = f'<p class="verdict" data-drifted="{esc(n_drifted)}">{esc(line)}</p>' + _table(head, rows, verdict_col=8)
    if len(features) > MAX_DRIFT_PLOTS:
        body += f'<p class="note">plots of the first {MAX_DRIFT_PLOTS} features, drifted first</p>'
    body += f'<div class="grid">{"".join(placeholders)}</div>'
    return _section("drift", "Drift", body), figures


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return _section("alerts", "Recent alerts", '<p class="empty">no alert fired or recovered in this window</p>')
    rows = [
        [_time(a["ts"]), a["key"], "FIRING" if a["firing"] else "recovered", short_json(a.get("detail"), 200)]
        for a in alerts
    ]
    return _section("alerts", "Recent alerts", _table(["time", "alert", "state", "detail"], rows, verdict_col=2))


def _validation(validation: Mapping[str, Any]) -> str:
    if validation.get("status") != "ok":
        css = "empty" if validation.get("status") == "none" else "error"
        return _section("validation", "Validation", f'<p class="{css}">{esc(validation.get("message"))}</p>')
    report = validation["report"]
    counts = report.get("counts") or {}
    when = _time(report.get("started_at") or validation.get("mtime"))
    verdict = "all cases pass" if report.get("ok") else "FAILING"
    targets = ", ".join(str(t.get("target", "")) for t in report.get("targets") or [] if isinstance(t, dict))
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    line = f"{when}: {verdict} ({summary or 'no cases'})" + (f" against {targets}" if targets else "")
    failing = [r for r in report["results"] if isinstance(r, dict) and r.get("status") in ("failed", "error")]
    rows = [[r.get("id"), r.get("status"), r.get("reason")] for r in failing[:50]]
    table = _table(["case", "status", "reason"], rows, verdict_col=1) if rows else ""
    ok = "true" if report.get("ok") else "false"
    body = f'<p class="verdict" data-ok="{ok}">{esc(line)}</p>{table}<p class="note">from {esc(validation["path"])}</p>'
    return _section("validation", "Validation", body)


def _predictions(key: str, title: str, rows: Sequence[Mapping[str, Any]], trace_base: str | None) -> str:
    if not rows:
        return _section(key, title, '<p class="empty">no predictions logged in this window</p>')
    lines = []
    for p in rows:
        rid = str(p.get("request_id", ""))
        if trace_base is not None:
            href = f"{trace_base}{quote(rid, safe='')}?ts={p.get('ts')!r}"
            ident = f'<a class="trace" href="{esc(href)}">{esc(rid)}</a>'
        else:
            full = orjson.dumps({"inputs": p.get("inputs"), "outputs": p.get("outputs")}, option=orjson.OPT_INDENT_2)
            ident = f"<details><summary>{esc(rid)}</summary><pre>{esc(full.decode())}</pre></details>"
        conf = p.get("confidence")
        lines.append(
            "<tr>"
            f"<td>{esc(_time(p.get('ts')))}</td><td>{ident}</td><td>{esc(_ms(p.get('latency_ms')))}</td>"
            f"<td>{esc(_num(conf) if conf is not None else 'n/a')}</td><td>{esc(p.get('model_version'))}</td>"
            f"<td>{esc(p.get('rules_version') or '')}</td>"
            f"<td class='text'>{esc(short_json(p.get('inputs')))}</td>"
            f"<td class='text'>{esc(short_json(p.get('outputs')))}</td>"
            "</tr>"
        )
    head = ["time", "request id", "latency", "confidence", "model", "rules", "input", "output"]
    table = _table_html(head, "".join(lines))
    return _section(key, title, table)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], verdict_col: int | None = None) -> str:
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = esc(cell)
            if i == verdict_col and text in ("DRIFTED", "FIRING", "failed", "error"):
                cells.append(f'<td class="bad">{text}</td>')
            else:
                cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return _table_html(head, "".join(body))


def _table_html(head: Sequence[str], body: str) -> str:
    heads = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f'<div class="table"><table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table></div>'


def short_json(value: Any, limit: int = TEXT_CHARS) -> str:
    """A value as one line of JSON, cut at `limit` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _time(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "n/a"


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, (int, float)) else "n/a"


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return f"{value:.4g}"
