"""Window summaries merge exactly: the KS statistic and bin counts of the merged parts are the
ones of the whole window, however it was split."""

from __future__ import annotations

import numpy as np
import pytest

from shipway.monitoring.drift import _stats as stats
from shipway.monitoring.drift._reference import NumericReference
from shipway.monitoring.drift._summaries import KEEP_VALUES, CategoricalPart, NumericPart


@pytest.mark.parametrize("seed", range(6))
def test_merged_numeric_parts_give_the_whole_windows_statistics(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Rounded values: ties inside the window, with the reference, and at the bin edges.
    reference = np.round(rng.normal(0, 1, 3_000), 1)
    window = np.round(rng.normal(0.2 * seed, 1 + seed / 10, 12_000), 1)
    ref = NumericReference.build(reference, sample_size=1_000, rng=rng)
    whole = NumericPart.of(window, ref)
    cuts = np.sort(rng.choice(len(window), size=seed + 2, replace=False))
    parts = [NumericPart.of(chunk, ref) for chunk in np.split(rng.permutation(window), cuts)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    expected_ks, _ = stats.ecdf_distances(ref.sample, np.sort(window))
    assert whole.ks_statistic(ref.sample) == merged.ks_statistic(ref.sample) == expected_ks
    assert (merged.cut_counts == stats.bin_counts(np.sort(window), ref.cuts)).all()
    assert (merged.hist == whole.hist).all() and (merged.below, merged.above) == (whole.below, whole.above)
    assert merged.n == len(window) and merged.values is None  # more than KEEP_VALUES values


def test_values_are_kept_up_to_the_exact_ks_range() -> None:
    rng = np.random.default_rng(0)
    ref = NumericReference.build(rng.normal(size=500), sample_size=500, rng=rng)
    half = KEEP_VALUES // 2
    a, b = NumericPart.of(rng.normal(size=half), ref), NumericPart.of(rng.normal(size=half), ref)
    both = a.merge(b)
    assert both.values is not None and len(both.values) == KEEP_VALUES
    assert both.merge(NumericPart.of([1.0], ref)).values is None
    assert NumericPart.of([None, "x", 1.0], ref).merge(NumericPart.of([float("nan")], ref)).missing == 2


def test_category_counts_add_in_one_order() -> None:
    a = CategoricalPart.of(["uk", "fr", None, "uk"])
    b = CategoricalPart.of(["de", "fr"])
    assert list(a.merge(b).counts.items()) == list(b.merge(a).counts.items()) == [("de", 1), ("fr", 2), ("uk", 2)]
    assert a.merge(b).missing == 1
