"""Drift statistics: each one against scipy's own function (or a plain implementation) on the same data."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.spatial import distance

from shipway.monitoring.drift import _stats as stats
from shipway.monitoring.drift.text_drift import oov_rate, vocabulary


def pairs(seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Sorted sample pairs: continuous, heavy ties, a constant side, far from zero, one value."""
    rng = np.random.default_rng(seed)
    return [
        ("normal", rng.normal(size=300), rng.normal(0.3, 1.2, size=1_000)),
        ("ties", rng.integers(0, 5, size=200).astype(float), rng.integers(0, 7, size=700).astype(float)),
        ("constant reference", np.full(50, 2.0), rng.integers(1, 4, size=80).astype(float)),
        ("both constant", np.full(40, 1.5), np.full(9, 1.5)),
        ("far from zero", rng.normal(1e9, 1.0, size=500), rng.normal(1e9 + 0.5, 2.0, size=400)),
        ("one current value", rng.normal(size=100), np.array([0.25])),
        ("one reference value", np.array([0.25]), rng.normal(size=100)),
        ("heavy tails", rng.standard_cauchy(size=400), rng.standard_cauchy(size=900) + 0.5),
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_statistic_and_wasserstein_match_scipy(seed: int) -> None:
    for name, a, b in pairs(seed):
        a, b = np.sort(a), np.sort(b)
        ks, w1 = stats.ecdf_distances(a, b)
        assert ks == pytest.approx(scipy_stats.ks_2samp(a, b).statistic, abs=1e-12), name
        assert w1 == pytest.approx(scipy_stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9), name


def test_large_samples_match_scipy() -> None:
    rng = np.random.default_rng(7)
    a = np.sort(rng.normal(size=20_000))
    b = np.sort(np.round(rng.normal(0.05, 1, size=200_000), 3))  # ties inside the window
    ks, w1 = stats.ecdf_distances(a, b)
    expected = scipy_stats.ks_2samp(a, b)
    assert ks == pytest.approx(expected.statistic, abs=1e-12)
    assert w1 == pytest.approx(scipy_stats.wasserstein_distance(a, b), rel=1e-9)
    # Above 10,000 values per side scipy's 'auto' uses the asymptotic distribution, and so do we.
    _statistic, p = stats.ks_test(a, b, ks)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert p < 0.05


def test_ks_p_value_matches_scipy_on_small_samples() -> None:
    for name, a, b in pairs(3):
        a, b = np.sort(a), np.sort(b)
        statistic, p = stats.ks_test(a, b)
        expected = scipy_stats.ks_2samp(a, b)
        assert (statistic, p) == pytest.approx((expected.statistic, expected.pvalue)), name


def test_chi2_matches_scipy_contingency() -> None:
    rng = np.random.default_rng(4)
    ref = Counter(rng.choice(["a", "b", "c", "d"], size=5_000, p=[0.4, 0.3, 0.2, 0.1]).tolist())
    cur = Counter(
        rng.choice(["a", "b", "c", "e"], size=800, p=[0.3, 0.3, 0.3, 0.1]).tolist()
    )  # e only here, d only there
    result = stats.chi2_test(ref, cur)
    keys = sorted(ref.keys() | cur.keys())
    table = np.array([[ref.get(k, 0) for k in keys], [cur.get(k, 0) for k in keys]])
    statistic, p, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert result.dof == dof == len(keys) - 1
    assert result.cramers_v == pytest.approx(math.sqrt(statistic / table.sum()))


def test_chi2_of_a_single_category_is_no_evidence() -> None:
    result = stats.chi2_test({"a": 10}, {"a": 3})
    assert (result.statistic, result.p_value, result.dof) == (0.0, 1.0, 0)


def test_jensenshannon_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    for ref_p, cur_p in ([[0.5, 0.3, 0.2, 0.0], [0.2, 0.3, 0.3, 0.2]], [[0.25] * 4, [0.25] * 4]):
        ref = Counter(rng.choice(list("wxyz"), size=3_000, p=ref_p).tolist())
        cur = Counter(rng.choice(list("wxyz"), size=1_000, p=cur_p).tolist())
        keys = sorted(ref.keys() | cur.keys())
        p = np.array([ref.get(k, 0) for k in keys], dtype=float)
        q = np.array([cur.get(k, 0) for k in keys], dtype=float)
        assert stats.jensenshannon(ref, cur) == pytest.approx(distance.jensenshannon(p, q), rel=1e-12, abs=1e-12)
    # Disjoint categories: the largest distance there is, sqrt(ln 2).
    assert stats.jensenshannon({"a": 5}, {"b": 5}) == pytest.approx(math.sqrt(math.log(2)))


def test_new_category_share() -> None:
    rng = np.random.default_rng(6)
    current = rng.choice(["a", "b", "new1", "new2"], size=1_000).tolist()
    expected = np.isin(current, ["new1", "new2"]).mean()
    assert stats.new_category_share({"a": 3, "b": 1}, Counter(current)) == pytest.approx(expected)


def test_psi_matches_a_plain_implementation() -> None:
    rng = np.random.default_rng(8)
    ref = np.sort(rng.normal(size=10_000))
    cur = np.sort(rng.normal(0.4, 1.0, size=3_000))
    cuts = stats.quantile_cuts(ref, 10)
    bounds = [-np.inf, *cuts, np.inf]
    r = np.array([((ref > lo) & (ref <= hi)).sum() for lo, hi in itertools.pairwise(bounds)])
    c = np.array([((cur > lo) & (cur <= hi)).sum() for lo, hi in itertools.pairwise(bounds)])
    assert stats.bin_counts(ref, cuts).tolist() == r.tolist()
    assert stats.bin_counts(cur, cuts).tolist() == c.tolist()
    # Deciles of continuous data: ten bins of (almost exactly) a tenth each.
    assert len(r) == 10 and r.min() >= 999 and r.max() <= 1001
    rs, cs = np.maximum(r / r.sum(), 1e-4), np.maximum(c / c.sum(), 1e-4)
    assert stats.psi(r, c) == pytest.approx(float(np.sum((cs - rs) * np.log(cs / rs))))
    assert stats.psi(r, r) == 0.0
    # An empty bin is floored, not infinite.
    assert math.isfinite(stats.psi(np.array([10, 0]), np.array([5, 5])))


def test_histogram_matches_numpy() -> None:
    rng = np.random.default_rng(9)
    values = np.sort(rng.normal(size=2_000))
    edges = np.linspace(-1.5, 1.5, 13)
    counts, below, above = stats.histogram(values, edges)
    expected, _ = np.histogram(values, edges)  # numpy leaves out values outside the edges
    assert counts.tolist() == expected.tolist()
    assert below == int((values < -1.5).sum()) and above == int((values > 1.5).sum())
    assert below + counts.sum() + above == len(values)


def test_dkw_bound_holds_at_its_stated_rate() -> None:
    rng = np.random.default_rng(10)
    n, trials = 500, 400
    eps = stats.dkw_epsilon(n, alpha=0.05)
    grid = np.arange(1, n + 1) / n
    misses = 0
    for _ in range(trials):
        u = np.sort(rng.uniform(size=n))  # the true CDF of a uniform is the identity
        gap = max(np.max(grid - u), np.max(u - (grid - 1 / n)))
        misses += gap > eps
    assert misses / trials <= 0.05 + 0.03  # at most 5% by the theorem, plus sampling slack


def test_wasserstein_sampling_bound_covers_the_mean_error() -> None:
    rng = np.random.default_rng(11)
    full = np.sort(rng.lognormal(size=20_000))
    size = 500
    bound = stats.wasserstein_expected_error(full, size)
    errors = [scipy_stats.wasserstein_distance(full, rng.choice(full, size=size, replace=False)) for _ in range(40)]
    assert 0 < np.mean(errors) <= bound
    assert stats.wasserstein_expected_error(full, len(full)) == 0.0


def test_vocabulary_estimates_the_oov_rate_of_new_text() -> None:
    # Zipf-distributed words: most of the vocabulary is rare, as in real text.
    rng = np.random.default_rng(12)
    words = [f"w{i}" for i in rng.zipf(1.6, size=60_000)]
    train = [" ".join(words[i : i + 10]) for i in range(0, 40_000, 10)]
    held_out = [" ".join(words[i : i + 10]) for i in range(40_000, 60_000, 10)]
    vocab, n_tokens, expected = vocabulary(train)
    assert n_tokens == 40_000
    rate, tokens, unseen = oov_rate(held_out, vocab)
    assert tokens == 20_000
    assert unseen and all(token not in vocab for token, _ in unseen)
    # Good-Turing's estimate is within a fifth of the rate actually met.
    assert expected == pytest.approx(rate, rel=0.2)
