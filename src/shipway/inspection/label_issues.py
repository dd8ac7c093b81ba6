"""`inspect_labels`: read a labelled dataset, cross-validate a model, and report likely label
issues and the slices where the model does worst, so poor performance is traced to data first."""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from shipway.errors import ConfigError, DataError
from shipway.inspection.crossval import default_model, load_factory, out_of_sample_probabilities
from shipway.inspection.labelled_data import Dataset, read_dataset
from shipway.inspection.labels import METHODS, LabelIssue, confusions, find_label_issues
from shipway.inspection.slices import ClassMetrics, Slice, class_metrics, worst_slices

__all__ = ["LabelReport", "inspect_labels", "write_report"]


@dataclass
class LabelReport:
    """What `shipway inspect labels` found in one dataset."""

    path: str
    label: str
    text: str | None
    numeric: list[str]
    categorical: list[str]
    rows: int  # rows analysed (read, less those left out: see notes)
    classes: int
    model: str
    method: str
    folds: int
    seed: int
    min_support: int
    accuracy: float  # out-of-sample, against the given labels
    seconds: float
    issues: list[LabelIssue]
    slices: list[Slice]
    class_metrics: list[ClassMetrics]
    confusions: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return 1 - self.accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "text": self.text,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "rows": self.rows,
            "classes": self.classes,
            "model": self.model,
            "method": self.method,
            "folds": self.folds,
            "seed": self.seed,
            "min_support": self.min_support,
            "accuracy": round(self.accuracy, 4),
            "error_rate": round(self.error_rate, 4),
            "seconds": round(self.seconds, 2),
            "issue_count": len(self.issues),
            "issues": [i.to_dict() for i in self.issues],
            "slices": [s.to_dict() for s in self.slices],
            "class_metrics": [m.to_dict() for m in self.class_metrics],
            "confusions": self.confusions,
            "notes": self.notes,
        }


def _require() -> None:
    """Fail before any work when the `inspect` extra is missing."""
    missing = []
    for module in ("pandas", "sklearn", "cleanlab"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(f"shipway inspect needs {', '.join(missing)}, not installed; pip install 'shipway[inspect]'")


def _enough_rows(dataset: Dataset, folds: int) -> Dataset:
    """The dataset less the classes too small to cross-validate; an error when too little is left."""
    counts = dataset.frame[dataset.label].value_counts()
    label = dataset.label
    if len(counts) < 2:
        raise DataError(
            f"column {label!r} holds one class only ({counts.index[0]!r}, {int(counts.iloc[0])} rows); finding "
            f"label issues needs at least two classes: is --label the right column?"
        )
    if len(dataset.frame) < 2 * folds:
        raise DataError(
            f"too few rows: {len(dataset.frame)}; {folds}-fold cross-validation needs at least {2 * folds} "
            f"(two classes with {folds} rows each); add rows or lower --folds"
        )
    small = counts[counts < folds]
    if small.empty:
        return dataset
    kept = counts[counts >= folds]
    listed = ", ".join(f"{c!r} ({n})" for c, n in small.head(5).items()) + (", ..." if len(small) > 5 else "")
    if len(kept) < 2:
        raise DataError(
            f"only {len(kept)} class of column {label!r} has at least {folds} rows, the number of folds; "
            f"fewer: {listed}. Add rows, or lower --folds (at least 2)"
        )
    note = (
        f"{len(small)} classes with fewer rows than the {folds} folds were left out ({int(small.sum())} rows): "
        f"{listed}; lower --folds or add rows to check them"
    )
    frame = dataset.frame[~dataset.frame[label].isin(small.index)]
    return replace(dataset, frame=frame, notes=[*dataset.notes, note])


def inspect_labels(
    path: Path | str,
    *,
    label: str | None = None,
    text: str | None = None,
    features: Sequence[str] | None = None,
    folds: int = 5,
    min_support: int = 20,
    top: int = 20,
    model: str | None = None,
    method: str = METHODS[0],
    seed: int = 0,
    jobs: int = 1,
) -> LabelReport:
    """Find likely label issues and the worst slices of the labelled dataset at `path`.

    `model` is `module:factory` or `file.py:factory` (default: one chosen by column types);
    `top` bounds the slices kept (the issues are all kept); the rest is as `shipway inspect labels`.
    """
    import numpy as np

    if folds < 2:
        raise ConfigError(f"--folds {folds}: cross-validation needs at least 2 folds; the default is 5")
    if min_support < 1 or top < 0:
        raise ConfigError(f"--min-support {min_support} and --top {top}: use a positive support and a top of 0 or more")
    if method not in METHODS:
        raise ConfigError(f"--method {method!r} is not one of {list(METHODS)}")
    _require()
    started = time.perf_counter()
    dataset = _enough_rows(read_dataset(Path(path), label=label, text=text, features=features), folds)
    factory, name = load_factory(model) if model else default_model(dataset)

    given = dataset.labels
    probs = out_of_sample_probabilities(factory, dataset.inputs(), given, folds=folds, seed=seed, jobs=jobs, name=name)
    classes = sorted(set(given.tolist()))
    y = np.searchsorted(np.asarray(classes), given)
    pred = probs.argmax(axis=1)
    rows = dataset.frame.index.to_numpy()
    order = dataset.informative_features(seed)
    if not dataset.text and len(order) > 1:
        dataset.notes.append(
            f"examples list the features by mutual information with the label, most first: {', '.join(order[:8])}"
            + (", ..." if len(order) > 8 else "")
        )
    issues = find_label_issues(y, probs, classes, rows, lambda i: dataset.describe(int(rows[i]), order), method=method)
    slices = worst_slices(dataset, pred != y, min_support=min_support, top=top)
    return LabelReport(
        path=str(path),
        label=dataset.label,
        text=dataset.text,
        numeric=list(dataset.numeric),
        categorical=list(dataset.categorical),
        rows=len(y),
        classes=len(classes),
        model=name,
        method=method,
        folds=folds,
        seed=seed,
        min_support=min_support,
        accuracy=float((pred == y).mean()),
        seconds=time.perf_counter() - started,
        issues=issues,
        slices=slices,
        class_metrics=class_metrics(y, pred, classes),
        confusions=confusions(issues),
        notes=dataset.notes,
    )


ISSUE_COLUMNS = ("row", "given", "suggested", "self_confidence", "suggested_confidence", "example")


def write_report(report: LabelReport, path: Path) -> None:
    """Save the report by suffix: .json (all of it), .csv (the label issues, to review and fix in
    a spreadsheet), .html (a page with every table)."""
    try:
        _write(report, path)
    except OSError as err:
        raise ConfigError(
            f"--out {str(path)!r}: cannot write it ({err.strerror or err}); check the folder exists"
        ) from err


def _write(report: LabelReport, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(ISSUE_COLUMNS)
            for issue in report.issues:
                d = issue.to_dict()
                writer.writerow([d[c] for c in ISSUE_COLUMNS])
    elif suffix in (".html", ".htm"):
        from shipway.inspection.html import render_html

        path.write_text(render_html(report), encoding="utf-8")
    else:
        raise ConfigError(f"--out {str(path)!r}: unknown suffix {suffix or '(none)'!r}; use .json, .csv or .html")
