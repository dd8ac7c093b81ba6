"""The drift checks' radix sort (monitoring/drift/_radix.py) leaves every value where numpy's
sort leaves it, bit for bit, and a numeric summary read from the export (UnreadNumbers, sorted
where it is) equals the summary of the same values handed in as an array."""

from __future__ import annotations

import numpy as np
import pytest

from shipway.monitoring.drift import _radix
from shipway.monitoring.drift import _stats as stats
from shipway.monitoring.drift._columns import UnreadNumbers
from shipway.monitoring.drift._reference import NumericReference
from shipway.monitoring.drift._summaries import NumericPart

SIZE = _radix._MIN_SIZE * 2  # large enough for the compiled kernel


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    specials = np.array([3.0, -0.0, 0.0, -5e-324, 5e-324, -np.inf, np.inf, -5.5, 2.0, -1e308, 1e308])
    return [
        rng.normal(0, 1e3, SIZE),
        -rng.random(SIZE),  # negatives only
        np.round(rng.normal(0, 3, SIZE)),  # many ties
        np.concatenate([np.tile(specials, SIZE // len(specials)), rng.normal(size=1000)]),
        np.full(SIZE, 7.25),  # every byte the same: passes skipped
        rng.normal(size=1000),  # below the kernel's size: numpy's sort
    ]


@pytest.mark.parametrize("case", range(len(_cases())))
def test_radix_sort_gives_numpys_order_bit_for_bit(case: int) -> None:
    values = _cases()[case]
    expected = np.sort(values)
    got = values.copy()
    _radix.sort(got)
    assert np.array_equal(got, expected)
    # Equal values are equal bits, save the zeros (numpy's sort leaves -0.0 and 0.0 in any order).
    differ = got.view(np.int64) != expected.view(np.int64)
    assert (got[differ] == 0).all()
    assert not (np.signbit(got[1:]) & (got[1:] == 0) & ~np.signbit(got[:-1]) & (got[:-1] == 0)).any()


def test_the_compiled_kernel_is_used_when_numba_is_installed() -> None:
    pytest.importorskip("numba")
    assert _radix._load() is not None


def test_a_summary_read_from_the_export_equals_the_arrays() -> None:
    rng = np.random.default_rng(5)
    reference = np.round(rng.normal(0, 1, 20_000), 2)
    ref = NumericReference.build(reference, sample_size=5_000, rng=rng)
    window = np.round(rng.normal(0.3, 1.2, SIZE), 2)
    window[rng.random(SIZE) < 0.01] = np.nan  # missing values
    columns = {"x": window}
    read = UnreadNumbers(_Fresh(columns), "x", SIZE)
    ours, theirs = NumericPart.of(read, ref, keep=True), NumericPart.of(window, ref, keep=True)
    assert ours.values is not None and theirs.values is not None
    assert np.array_equal(ours.values, np.sort(window[~np.isnan(window)]))
    assert np.array_equal(ours.values, theirs.values) and np.isnan(window).any()  # the caller's array untouched
    for name in ("n", "invalid", "missing", "total", "below", "above"):
        assert getattr(ours, name) == getattr(theirs, name)
    for name in ("cut_counts", "hist", "equal", "gap_count", "gap_min", "gap_min_count"):
        assert np.array_equal(getattr(ours, name), getattr(theirs, name))
    assert stats.ecdf_distances(ref.sample, ours.values) == stats.ecdf_distances(ref.sample, theirs.values)


class _Fresh(dict):  # type: ignore[type-arg]
    """What store/log_window.py's NumberColumns does: a new array at every lookup."""

    def __getitem__(self, name: str) -> np.ndarray:
        return np.array(super().__getitem__(name))
