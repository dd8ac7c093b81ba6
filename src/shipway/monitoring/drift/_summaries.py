"""What the drift statistics need of a window, as summaries that merge exactly.

A window split into parts (batches, worker processes, Ray blocks) is summarised part by part,
and the summaries merge into the one of the whole window, whatever the split:

- numeric (and text lengths): the counts in the reference's PSI bins and histogram bins, and,
  at each distinct value of the reference sample, how many window values equal it, and between
  two of them how many fall there, the smallest and how often it occurs. That is all the exact
  two-sample Kolmogorov-Smirnov statistic reads (see `stats.ecdf_distances`). The values
  themselves are kept while there are at most 10,000 of them, where KS p-values are exact and
  need them; Wasserstein needs them too, so beyond that it has no verdict from summaries.
- categorical: the count of every category.
- text: the length summary; the texts themselves only in memory (the out-of-vocabulary rate and
  the domain classifier read them, so they have no verdict from merged summaries).

`compare` summarises a window in memory, keeping every value, and answers as before; the
engines (shipway.engine) summarise parts of a log and merge them (`DriftJob`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipway.common.merging import merge_fields
from shipway.monitoring.drift import _radix
from shipway.monitoring.drift import _stats as stats
from shipway.monitoring.drift._columns import UnreadNumbers, count_categories, to_float, to_texts
from shipway.monitoring.drift._reference import NumericReference

__all__ = ["KEEP_VALUES", "CategoricalPart", "NumericPart", "TextPart"]

KEEP_VALUES = stats.KS_EXACT_MAX_N  # values kept by merged summaries: exact KS p-values need them


def _distinct(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted sample, and how many sample values are at or below each."""
    distinct = np.empty(len(sample), dtype=bool)
    np.not_equal(sample[1:], sample[:-1], out=distinct[:-1])
    distinct[-1] = True
    return sample[distinct], np.flatnonzero(distinct) + 1


@dataclass(slots=True)
class NumericPart:
    """A numeric column of (part of) a window, against one NumericReference."""

    n: int  # values present
    invalid: int
    missing: int
    total: float  # the sum of the values (text lengths: integers, so exact)
    cut_counts: np.ndarray  # counts in the PSI bins (stats.bin_counts)
    hist: np.ndarray  # counts in the histogram bins (stats.histogram)
    below: int
    above: int
    equal: np.ndarray  # at each distinct reference sample value: window values equal to it
    gap_count: np.ndarray  # in the gaps below, between and above those values: how many
    gap_min: np.ndarray  # the smallest value in each gap (inf when empty)
    gap_min_count: np.ndarray  # and how often it occurs
    values: np.ndarray | None  # sorted, while kept

    @classmethod
    def of(cls, values: Sequence[Any] | np.ndarray, ref: NumericReference, keep: bool = False) -> NumericPart:
        """The summary of raw values (numbers, None, NaN, strings...); `keep` keeps every value."""
        array, invalid = to_float(values)
        nan = np.isnan(array)
        # A new array read for this summary is sorted where it is; the caller's, in a copy.
        current = array if isinstance(values, UnreadNumbers) and not nan.any() else array[~nan]
        _radix.sort(current)
        return cls.of_sorted(current, ref, invalid, len(array) - len(current) - invalid, keep)

    @classmethod
    def of_sorted(
        cls, current: np.ndarray, ref: NumericReference, invalid: int, missing: int, keep: bool = False
    ) -> NumericPart:
        hist, below, above = stats.histogram(current, ref.edges)
        u, _ = _distinct(ref.sample)
        left = np.searchsorted(current, u, side="left")
        right = np.searchsorted(current, u, side="right")
        start = np.concatenate(([0], right))
        end = np.concatenate((left, [len(current)]))
        gap_count = end - start
        occupied = gap_count > 0
        gap_min = np.full(len(gap_count), np.inf)
        gap_min[occupied] = current[start[occupied]]
        gap_min_count = np.zeros(len(gap_count), dtype=np.int64)
        gap_min_count[occupied] = np.searchsorted(current, gap_min[occupied], side="right") - start[occupied]
        return cls(
            n=len(current),
            invalid=invalid,
            missing=missing,
            total=float(current.sum()),
            cut_counts=stats.bin_counts(current, ref.cuts),
            hist=hist,
            below=below,
            above=above,
            equal=right - left,
            gap_count=gap_count,
            gap_min=gap_min,
            gap_min_count=gap_min_count,
            values=current if keep or len(current) <= KEEP_VALUES else None,
        )

    def merge(self, other: NumericPart) -> NumericPart:
        """Counts and sums add (common/merging.py); each gap's smallest value and the kept values merge here."""
        values = None
        if self.values is not None and other.values is not None and self.n + other.n <= KEEP_VALUES:
            values = np.sort(np.concatenate((self.values, other.values)))
        gap_min = np.minimum(self.gap_min, other.gap_min)
        gap_min_count = np.where(self.gap_min == gap_min, self.gap_min_count, 0) + np.where(
            other.gap_min == gap_min, other.gap_min_count, 0
        )
        return merge_fields(
            self,
            other,
            gap_min=gap_min,
            gap_min_count=np.where(np.isinf(gap_min), 0, gap_min_count),
            values=values,
        )

    def ks_statistic(self, sample: np.ndarray) -> float:
        """The two-sample KS statistic against the reference sample, as stats.ecdf_distances gives it."""
        n, m = self.n, len(sample)
        _, below_u = _distinct(sample)
        r = below_u / m
        at_or_below = np.cumsum(self.gap_count[:-1] + self.equal)
        ks = float(np.max(np.abs(r - at_or_below / n)))
        start = np.concatenate(([0], at_or_below))
        end = np.concatenate((at_or_below - self.equal, [n]))
        level = np.concatenate(([0.0], r))
        occupied = self.gap_count > 0
        if occupied.any():
            first = start[occupied] + self.gap_min_count[occupied]
            ks = max(ks, float(np.max(np.abs(level[occupied] - first / n))))
            ks = max(ks, float(np.max(np.abs(level[occupied] - end[occupied] / n))))
        return ks

    @property
    def mean(self) -> float:
        return float(self.values.mean()) if self.values is not None else self.total / self.n


@dataclass(slots=True)
class CategoricalPart:
    counts: Counter[str] = field(default_factory=Counter)
    missing: int = 0

    @classmethod
    def of(cls, values: Sequence[Any] | np.ndarray) -> CategoricalPart:
        counts, missing = count_categories(values)
        return cls(_by_name(counts), missing)

    def merge(self, other: CategoricalPart) -> CategoricalPart:
        return merge_fields(self, other, counts=_by_name(self.counts + other.counts))


@dataclass(slots=True)
class TextPart:
    lengths: NumericPart
    missing: int
    invalid: int
    texts: list[str] | None  # in memory only

    @classmethod
    def of(cls, values: Sequence[Any] | np.ndarray, ref: NumericReference, keep: bool = False) -> TextPart:
        texts, missing, invalid = to_texts(values)
        lengths = np.sort(np.fromiter(map(len, texts), dtype=np.float64, count=len(texts)))
        return cls(NumericPart.of_sorted(lengths, ref, 0, 0, keep), missing, invalid, texts if keep else None)

    def merge(self, other: TextPart) -> TextPart:
        return merge_fields(self, other, texts=None)


def _by_name(counts: Mapping[str, int]) -> Counter[str]:
    """The counts in the order of their names: ties list in one order, whatever the split."""
    return Counter({k: counts[k] for k in sorted(counts)})
