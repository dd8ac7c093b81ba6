"""`shipway inspect`: trace poor model performance to the data and labels (docs/inspect.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from shipway.cli.common import fail, table
from shipway.errors import ConfigError, ShipwayError
from shipway.inspection.labels import METHODS

if TYPE_CHECKING:
    from shipway.inspection import LabelReport

__all__ = ["inspect"]

OUT_SUFFIXES = (".json", ".csv", ".html", ".htm")
EXAMPLE_WIDTH = 70


@click.group()
def inspect() -> None:
    """Debug data and labels: likely mislabelled rows and the slices where the model does worst."""


def _clip(text: str, width: int = EXAMPLE_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render(report: LabelReport, top: int) -> str:
    """The report as the terminal shows it: the summary, then the tables, each cut to `top` rows."""
    r = report
    columns = [f"label {r.label!r}"]
    if r.text:
        columns.append(f"text {r.text!r}")
    if r.numeric or r.categorical:
        columns.append(f"features {[*r.numeric, *r.categorical]}")
    share = len(r.issues) / r.rows if r.rows else 0.0
    out = [
        f"shipway inspect labels: {r.path}",
        f"  {r.rows:,} rows, {r.classes} classes; {', '.join(columns)}",
        f"  model: {r.model}; {r.folds}-fold stratified cross-validation (seed {r.seed})",
        f"  out-of-sample accuracy {r.accuracy:.3f} (error rate {r.error_rate:.3f}) against the given labels",
        f"  {len(r.issues):,} likely label issues ({share:.1%} of rows), by confident learning ({r.method})",
        f"  took {r.seconds:.1f} s",
    ]
    out += [f"  note: {note}" for note in r.notes]

    shown = r.issues[:top]
    out += ["", f"Likely label issues: {len(shown)} of {len(r.issues)}, lowest p(given) first"]
    if shown:
        what = "text" if r.text else "features"
        issues = [(i.row, i.given, i.suggested, f"{i.self_confidence:.3f}", _clip(i.example)) for i in shown]
        out += table(("row", "given", "suggested", "p(given)", what), issues, right={0, 3})
    if r.confusions:
        out += ["", "Most frequent given -> suggested among them"]
        pairs = [(c["count"], c["given"], c["suggested"]) for c in r.confusions[: min(top, 10)]]
        out += table(("issues", "given", "suggested"), pairs, right={0})

    out += [
        "",
        f"Worst slices: error rate {r.error_rate:.3f} overall; slices of at least {r.min_support} rows, "
        f"ranked by the lower end of the 95% interval",
    ]
    if r.slices:
        slices = [
            (s.description, s.rows, s.errors, f"{s.error_rate:.3f}", f"{s.interval[0]:.3f}-{s.interval[1]:.3f}")
            for s in r.slices[:top]
        ]
        out += table(("slice", "rows", "errors", "error rate", "95% interval"), slices, right={1, 2, 3})
    else:
        out.append(f"  (no slice has {r.min_support} rows or more; lower --min-support)")

    worst = r.class_metrics[:top]
    out += ["", f"Classes, lowest recall first: {len(worst)} of {r.classes}"]
    classes = [(m.name, m.support, m.predicted, f"{m.precision:.3f}", f"{m.recall:.3f}") for m in worst]
    out += table(("class", "rows", "predicted", "precision", "recall"), classes, right={1, 2, 3, 4})
    return "\n".join(out)


@inspect.command()
@click.argument("data")
@click.option("--label", help="The label column (default: the column named label, intent, category, class or target).")
@click.option("--text", help="The free-text column (default: one named text, utterance... or the longest strings).")
@click.option(
    "--features",
    help="Comma-separated feature columns (default: every other column but identifiers). With it, no text is inferred.",
)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Cross-validation folds.")
@click.option(
    "--top", type=click.IntRange(min=0), default=20, show_default=True, help="Rows shown per table, slices kept."
)
@click.option(
    "--min-support",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="The fewest rows a slice needs to be ranked.",
)
@click.option(
    "--model",
    help="Your own model: MODULE:FACTORY or path/to/file.py:FACTORY, a function returning an unfitted "
    "scikit-learn-compatible classifier with predict_proba (default: chosen by column types).",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default=METHODS[0],
    show_default=True,
    help="Which rows confident learning flags (cleanlab's filter_by).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fold split.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Folds fitted in parallel.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON instead of tables.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save the report: .json (all of it), .csv (every label issue) or .html (a page).",
)
def labels(
    data: str,
    label: str | None,
    text: str | None,
    features: str | None,
    folds: int,
    top: int,
    min_support: int,
    model: str | None,
    method: str,
    seed: int,
    jobs: int,
    as_json: bool,
    out: Path | None,
) -> None:
    """Find likely mislabelled rows in DATA (.csv, .jsonl, .parquet) and the slices where a
    cross-validated model does worst."""
    from shipway.inspection import inspect_labels, write_report

    try:
        if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
            raise ConfigError(
                f"--out {str(out)!r}: unknown suffix {out.suffix or '(none)'!r}; use .json, .csv or .html"
            )
        if out is not None and not out.parent.is_dir():
            raise ConfigError(f"--out {str(out)!r}: no folder {str(out.parent)!r}; create it or save elsewhere")
        columns = [c.strip() for c in features.split(",") if c.strip()] if features is not None else None
        if columns is not None and not columns:
            raise ConfigError(f"--features {features!r} names no column; pass them comma-separated, e.g. age,region")
        report = inspect_labels(
            data,
            label=label,
            text=text,
            features=columns,
            folds=folds,
            min_support=min_support,
            top=top,
            model=model,
            method=method,
            seed=seed,
            jobs=jobs,
        )
        if out is not None:
            write_report(report, out)
    except ShipwayError as err:
        fail(err)
    if as_json:
        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render(report, top))
    if out is not None:
        click.echo(f"wrote {out}", err=True)
