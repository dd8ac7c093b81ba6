"""The label report as one self-contained HTML page (no scripts, no outside files)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipway.inspection.label_issues import LabelReport

__all__ = ["render_html"]

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 2em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #8a5300; }
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{value}</td>' if isinstance(value, int | float) else f"<td>{escape(str(value))}</td>"
            for value in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(report: LabelReport) -> str:
    r = report
    summary = (
        f"{r.rows:,} rows, {r.classes} classes (label {escape(r.label)!s}); model: {escape(r.model)}, "
        f"{r.folds}-fold cross-validation; out-of-sample accuracy {r.accuracy:.3f}; "
        f"{len(r.issues):,} likely label issues ({escape(r.method)}); {r.seconds:.1f} s"
    )
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in r.notes)
    issues = _table(
        ("row", "given", "suggested", "self-confidence", "example"),
        ((i.row, i.given, i.suggested, i.self_confidence, i.example) for i in r.issues),
    )
    slices = _table(
        ("slice", "rows", "errors", "error rate", "95% interval"),
        (
            (s.description, s.rows, s.errors, round(s.error_rate, 3), f"{s.interval[0]:.3f}–{s.interval[1]:.3f}")
            for s in r.slices
        ),
    )
    pairs = _table(("given", "suggested", "issues"), ((c["given"], c["suggested"], c["count"]) for c in r.confusions))
    classes = _table(
        ("class", "support", "predicted", "precision", "recall"),
        ((m.name, m.support, m.predicted, round(m.precision, 3), round(m.recall, 3)) for m in r.class_metrics),
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>Label report: {escape(r.path)}</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Label report: {escape(r.path)}</h1><p>{summary}</p>{notes}"
        f"<h2>Likely label issues</h2><p>Lowest self-confidence (the model's probability of the given label) "
        f"first.</p>{issues}"
        f"<h2>Worst slices</h2><p>Overall error rate {r.error_rate:.3f}; slices of at least {r.min_support} rows, "
        f"ranked by the lower end of the 95% Wilson interval.</p>{slices}"
        f"<h2>Most frequent given → suggested</h2>{pairs}"
        f"<h2>Classes</h2><p>Lowest recall first.</p>{classes}"
        "</body></html>\n"
    )
