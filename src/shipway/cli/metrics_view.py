"""The text view of `shipway monitor metrics`: the online metrics as plain tables."""

from __future__ import annotations

import time
from typing import Any

from shipway.cli.common import table as text_table

__all__ = ["metrics_tables"]


def metrics_tables(metrics: dict[str, Any]) -> str:
    """Tables of the totals, of the metrics the output's kind needs, and per version if split."""
    t = metrics["totals"]
    out = [
        f"{metrics['service']}: {_when(metrics['since'])} to {_when(metrics['until'])} (output kind: {t['kind'] or 'unknown'})",
        "",
    ]
    latency = t["latency_ms"]
    rows = [
        ("requests", t["requests"]),
        ("errors", f"{t['errors']} ({_pct(t['error_rate'])})"),
        ("latency ms p50 / p90 / p99", " / ".join(_num(latency[q]) for q in ("p50", "p90", "p99"))),
        ("with feedback", f"{t['labelled']} ({_pct(t['coverage'])} of predictions)"),
        ("accuracy", _pct(t["accuracy"])),
    ]
    out += text_table(("traffic and feedback", "value"), rows, right=set())
    for section in (_binary(t["binary"]), _regression(t["regression"]), _ranking(t["ranking"]), _classes(t)):
        if section:
            out += ["", *section]
    buckets = _buckets(t["kind"], metrics.get("kind_series") or [])
    if buckets:
        out += ["", *buckets]
    by = metrics["by"]
    if by:
        versions = []
        for series in metrics["series"]:
            points = series["points"]
            requests = sum(p["requests"] for p in points)
            errors = sum(p["errors"] for p in points)
            labelled = sum(p["labelled"] for p in points)
            versions.append((series["group"].get(by) or "(none)", requests, errors, labelled))
        out += ["", *text_table((by, "requests", "errors", "with feedback"), versions, right={1, 2, 3})]
    return "\n".join(out)


def _binary(b: dict[str, Any] | None) -> list[str]:
    if not b:
        return []
    rows = [
        ("outcomes (positives)", f"{b['count']} ({b['positives']})"),
        ("ROC AUC", f"{_num(b['roc_auc'])} (binned: within {_num(b['auc_bound'])})"),
        ("PR AUC (average precision)", _num(b["pr_auc"])),
        ("Brier score", _num(b["brier"])),
        ("log loss", _num(b["log_loss"])),
        (f"accuracy at {b['threshold']}", _pct(b["accuracy"])),
        (f"precision / recall of {b.get('positive_label', '1')}", f"{_pct(b['precision'])} / {_pct(b['recall'])}"),
        ("expected calibration error", _num(b["calibration"]["ece"])),
    ]
    cal = [
        (f"{c['lo']:.1f}-{c['hi']:.1f}", c["count"], _num(c["confidence"]), _num(c["accuracy"]))
        for c in b["calibration"]["bins"]
    ]
    return [
        *text_table(("binary score", "value"), rows, right=set()),
        "",
        *text_table(("score", "count", "mean score", "positive rate"), cal, right={1, 2, 3}),
    ]


# Per output kind: the columns of the per-bucket table, (heading, key, format).
_BUCKET_COLUMNS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "binary": (
        ("ROC AUC", "roc_auc", "num"),
        ("PR AUC", "pr_auc", "num"),
        ("Brier", "brier", "num"),
        ("log loss", "log_loss", "num"),
        ("accuracy", "accuracy", "pct"),
    ),
    "regression": (("MAE", "mae", "num"), ("RMSE", "rmse", "num"), ("bias", "bias", "num")),
    "ranking": (("MRR", "mrr", "num"), ("hit @1", "hit_rate.1", "pct"), ("NDCG @10", "ndcg.10", "num")),
}


def _buckets(kind: str | None, points: list[dict[str, Any]]) -> list[str]:
    """The output kind's metrics per time bucket that has outcomes."""
    columns = _BUCKET_COLUMNS.get(kind or "")
    if not columns or not points:
        return []
    rows = []
    for p in points:
        cells: list[Any] = [_when(p["t"]), p["count"]]
        for _, key, style in columns:
            top, _, sub = key.partition(".")
            value = (p.get(top) or {}).get(sub) if sub else p.get(top)
            cells.append(_pct(value) if style == "pct" else _num(value))
        rows.append(tuple(cells))
    head = ("bucket (UTC)", "outcomes", *(c[0] for c in columns))
    return text_table(head, rows, right=set(range(1, len(head))))


def _regression(r: dict[str, Any] | None) -> list[str]:
    if not r:
        return []
    rows = [
        ("outcomes", r["count"]),
        ("MAE", _num(r["mae"])),
        ("RMSE", _num(r["rmse"])),
        ("bias (mean score - mean outcome)", _num(r["bias"])),
        ("mean outcome", _num(r["mean_actual"])),
    ]
    return text_table(("regression", "value"), rows, right=set())


def _ranking(r: dict[str, Any] | None) -> list[str]:
    if not r:
        return []
    out: list[str] = []
    for name, m in [("label", r), *r.get("outcomes", {}).items()]:
        if not m["count"]:
            continue
        rows = [(f"{name}: outcomes", m["count"]), ("MRR", _num(m["mrr"])), ("listed", _pct(m["listed"]))]
        rows += [(f"hit rate @{k} / NDCG @{k}", f"{_pct(h)} / {_num(m['ndcg'][k])}") for k, h in m["hit_rate"].items()]
        out += [*([""] if out else []), *text_table(("ranking", "value"), rows, right=set())]
    return out


def _classes(t: dict[str, Any]) -> list[str]:
    rows = [
        (label, c["support"], _pct(c["precision"]), _pct(c["recall"]))
        for label, c in sorted(t["per_class"].items(), key=lambda kv: -kv[1]["support"])[:20]
    ]
    return text_table(("class", "support", "precision", "recall"), rows, right={1, 2, 3}) if rows else []


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
