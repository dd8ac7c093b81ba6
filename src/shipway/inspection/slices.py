"""Where the model does worst: error rates per class and per slice of the data.

A slice is the rows sharing something a person can name: a given label, a category's value, a
quantile bin of a number or of the text's length, a frequent word or word pair. Each gets its
error rate with a 95% Wilson score interval (Wilson, "Probable inference, the law of succession,
and statistical inference", JASA 22, 1927), which stays inside [0, 1] and is honest for small
counts. Slices are ranked by the interval's lower end, so a slice ranks high only when it is
both bad and big enough for that to be more than luck; slices under a minimum support are left
out altogether.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from shipway.inspection.labelled_data import Dataset

__all__ = ["ClassMetrics", "Slice", "class_metrics", "wilson", "worst_slices"]

Z95 = 1.959964  # the normal quantile for a two-sided 95% interval
NUMBER_BINS = 5  # quantile bins per numeric column (and for text length)
FEW_VALUES = 10  # a number with at most this many distinct values is sliced per value
# A slice sharing this much of its rows (Jaccard) with a worse one already listed says nothing new.
OVERLAP = 0.8


def wilson(errors: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for the rate `errors / n`."""
    if n == 0:
        return 0.0, 1.0
    p = errors / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Slice:
    """Rows sharing a trait, and how often the model got them wrong."""

    kind: str  # class, category, number, length or token
    column: str
    description: str  # e.g. "category = card_arrival", 'text contains "top up"'
    rows: int
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.rows if self.rows else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.errors, self.rows)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "kind": self.kind,
            "column": self.column,
            "slice": self.description,
            "rows": self.rows,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "ci95": [round(low, 4), round(high, 4)],
        }


@dataclass(frozen=True)
class ClassMetrics:
    """How the cross-validated model does on one class."""

    name: str
    support: int  # rows with this given label
    predicted: int  # rows the model put in this class
    precision: float
    recall: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.name,
            "support": self.support,
            "predicted": self.predicted,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
        }


def class_metrics(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> list[ClassMetrics]:
    """Precision and recall per class, lowest recall first."""
    import numpy as np

    k = len(classes)
    support = np.bincount(y, minlength=k)
    predicted = np.bincount(pred, minlength=k)
    hits = np.bincount(y[y == pred], minlength=k)
    out = [
        ClassMetrics(
            classes[c],
            int(support[c]),
            int(predicted[c]),
            float(hits[c] / predicted[c]) if predicted[c] else 0.0,
            float(hits[c] / support[c]) if support[c] else 0.0,
        )
        for c in range(k)
    ]
    return sorted(out, key=lambda m: (m.recall, m.precision, m.name))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _binned(values: Any, column: str, kind: str, unit: str, min_support: int) -> Iterator[tuple[Slice, np.ndarray]]:
    """Quantile bins of a numeric Series (per value when it has few), described by the values
    actually in each bin; missing values are a slice of their own."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    missing = np.flatnonzero(numbers.isna().to_numpy())
    if len(missing) >= min_support:
        yield Slice(kind, column, f"{column} is missing", len(missing), 0), missing
    present = numbers.dropna()
    if present.nunique() <= FEW_VALUES:
        groups = present.groupby(present).groups
        for value, index in groups.items():
            yield Slice(kind, column, f"{column} = {_fmt(float(value))}{unit}", len(index), 0), np.asarray(index)
        return
    bins = pd.qcut(present, NUMBER_BINS, duplicates="drop")
    for _, index in present.groupby(bins, observed=True).groups.items():
        inside = present.loc[index]
        label = f"{column} {_fmt(inside.min())}–{_fmt(inside.max())}{unit}"
        yield Slice(kind, column, label, len(index), 0), np.asarray(index)


def _candidates(dataset: Dataset, min_support: int) -> Iterator[tuple[Slice, np.ndarray]]:
    """Every slice with at least `min_support` rows, with its row positions (errors not yet counted)."""
    import numpy as np
    import pandas as pd

    # From here on, index labels are row positions, matching `wrong`.
    frame = dataset.frame.reset_index(drop=True)
    labels = frame[dataset.label]
    for value, index in labels.groupby(labels).groups.items():
        yield Slice("class", dataset.label, f"{dataset.label} = {value}", len(index), 0), np.asarray(index)
    for column in dataset.categorical:
        values = frame[column]
        for value, index in values.groupby(values).groups.items():
            yield Slice("category", column, f"{column} = {value}", len(index), 0), np.asarray(index)
    for column in dataset.numeric:
        yield from _binned(frame[column], column, "number", "", min_support)
    if dataset.text:
        text = frame[dataset.text]
        words = pd.Series(text.str.split().str.len(), index=frame.index)
        yield from _binned(words, f"{dataset.text} length", "length", " words", min_support)
        yield from _token_slices(text.tolist(), dataset.text, min_support)


def _token_slices(texts: list[str], column: str, min_support: int) -> Iterator[tuple[Slice, np.ndarray]]:
    """One slice per word or word pair found in at least `min_support` rows."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True, min_df=min_support)
    try:
        matrix = vectorizer.fit_transform(texts).tocsc()
    except ValueError:  # no word is that frequent
        return
    for j, term in enumerate(vectorizer.get_feature_names_out()):
        index = matrix.indices[matrix.indptr[j] : matrix.indptr[j + 1]]
        yield Slice("token", column, f'{column} contains "{term}"', len(index), 0), index


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared) if shared else 0.0


def worst_slices(
    dataset: Dataset,
    wrong: np.ndarray,
    *,
    min_support: int = 20,
    top: int = 20,
    overlap: float = OVERLAP,
) -> list[Slice]:
    """The `top` slices with the highest error rates, ranked by the lower end of their 95% interval.

    `wrong` holds, per row of `dataset.frame` in order, whether the model got it wrong. A slice
    that mostly repeats the rows of one ranked above it is skipped.
    """
    import numpy as np

    scored = []
    for s, index in _candidates(dataset, min_support):
        if s.rows < min_support or s.rows == len(wrong):
            continue
        index = np.sort(np.asarray(index, dtype=int))
        errors = int(wrong[index].sum())
        scored.append((Slice(s.kind, s.column, s.description, s.rows, errors), index))
    scored.sort(key=lambda item: (-item[0].interval[0], -item[0].error_rate, -item[0].rows, item[0].description))
    chosen: list[tuple[Slice, np.ndarray]] = []
    for s, index in scored:
        if len(chosen) >= top:
            break
        if all(_jaccard(index, other) < overlap for _, other in chosen):
            chosen.append((s, index))
    return [s for s, _ in chosen]
