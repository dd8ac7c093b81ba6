"""The drift statistics for numeric and categorical features, in vectorised numpy.

Numeric statistics take *sorted* float arrays without NaN: the caller sorts each column once
and every statistic (KS, Wasserstein, PSI, histograms) reads the same sorted array. Categorical
statistics take counts per category. scipy provides the distributions for p-values only; the
tests check each statistic against scipy's own function on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "PSI_FLOOR",
    "Chi2",
    "bin_counts",
    "chi2_test",
    "dkw_epsilon",
    "ecdf_distances",
    "histogram",
    "jensenshannon",
    "ks_asymptotic_p",
    "ks_test",
    "new_category_share",
    "psi",
    "quantile_cuts",
    "wasserstein_expected_error",
]

# An empty bin has no logarithm; its share is raised to this before PSI is taken (a common
# convention; Evidently fills zeros with 1e-4 too). It caps one bin's contribution near 0.9.
PSI_FLOOR = 1e-4

# scipy's ks_2samp computes exact p-values up to this many values per sample (its 'auto' mode).
KS_EXACT_MAX_N = 10_000


def quantile_cuts(sorted_values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Interior cut points splitting the values into `bins` equal-count bins (fewer where values tie)."""
    if len(sorted_values) == 0:
        return np.empty(0)
    cuts = np.quantile(sorted_values, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
    return np.unique(cuts)


def bin_counts(sorted_values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Counts in the bins (-inf, c0], (c0, c1], ..., (c_last, inf): one binary search per cut."""
    at_or_below = np.searchsorted(sorted_values, cuts, side="right")
    return np.diff(np.concatenate(([0], at_or_below, [len(sorted_values)])))


def histogram(sorted_values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Counts in [e0, e1), ..., [e_k-1, e_k] (numpy.histogram's bins), and the counts below and above."""
    left = np.searchsorted(sorted_values, edges, side="left")
    inner = np.diff(left)
    last = int(np.searchsorted(sorted_values, edges[-1], side="right"))
    inner[-1] += last - left[-1]  # the last bin includes its right edge
    return inner, int(left[0]), len(sorted_values) - last


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index: sum over bins of (c - r) * ln(c / r), on shares of each side.

    Shares below `floor` are raised to it, so an empty bin adds a large but finite term.
    """
    r = np.maximum(np.asarray(reference_counts, dtype=np.float64) / max(1, np.sum(reference_counts)), floor)
    c = np.maximum(np.asarray(current_counts, dtype=np.float64) / max(1, np.sum(current_counts)), floor)
    return float(np.sum((c - r) * np.log(c / r)))


def ecdf_distances(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic and Wasserstein-1 distance, exactly.

    Both inputs sorted, without NaN, non-empty. KS is the largest gap between the two
    empirical CDFs, Wasserstein-1 the area between them. The reference is the small side (a
    sample of at most some thousands of values) and the window the large one, so the work
    after sorting the window is a few binary searches per distinct reference value plus one
    prefix sum: between two consecutive reference values the reference CDF is flat, and the
    window's CDF is monotone, so its extremes (KS) and its crossing of the flat level
    (Wasserstein) are found by search instead of by visiting every window value.
    """
    m, n = len(reference), len(current)
    distinct = np.empty(m, dtype=bool)
    np.not_equal(reference[1:], reference[:-1], out=distinct[:-1])
    distinct[-1] = True
    u = reference[distinct]  # distinct reference values, ascending
    below_u = np.flatnonzero(distinct) + 1  # reference values <= each u
    r = below_u / m  # the reference CDF at u, and on [u_k, u_k+1)
    at_or_below = np.searchsorted(current, u, side="right")
    strictly_below = np.searchsorted(current, u, side="left")

    # KS: at the reference values, then at the window values between them (interval k lies
    # below u_k; the reference CDF there is r_k-1, and 0 below u_0).
    ks = float(np.max(np.abs(r - at_or_below / n)))
    start = np.concatenate(([0], at_or_below))
    end = np.concatenate((strictly_below, [n]))
    level = np.concatenate(([0.0], r))
    occupied = end > start
    if occupied.any():
        first = np.searchsorted(current, current[start[occupied]], side="right")  # ties of the first value
        ks = max(ks, float(np.max(np.abs(level[occupied] - first / n))))
        ks = max(ks, float(np.max(np.abs(level[occupied] - end[occupied] / n))))

    # Wasserstein-1 from H(t), the integral of the window CDF up to t: H(t) = (c t - S_c) / n,
    # with c the window values below t and S_c their sum. Centring first keeps c t - S_c from
    # cancelling digits when the values sit far from zero.
    centre = u[len(u) // 2]
    # The prefix sums of x = current - centre, built in one array of n + 1 (x itself is never
    # held: a window of ten million values would need two more arrays of its size).
    prefix = np.empty(n + 1)
    prefix[0] = 0.0
    np.subtract(current, centre, out=prefix[1:])
    np.cumsum(prefix[1:], out=prefix[1:])

    def integral(t: np.ndarray, below: np.ndarray | None = None) -> np.ndarray:
        c = np.searchsorted(current, t + centre, side="left") if below is None else below
        return (c * t - prefix[c]) / n

    uc = u - centre
    h_u = integral(uc, strictly_below)
    area = float(h_u[0])  # below u_0 the reference CDF is 0
    if len(u) > 1:
        a, b, level = uc[:-1], uc[1:], r[:-1]
        # The window CDF exceeds the flat reference level from its (q+1)-th value on.
        q = (below_u[:-1] * n) // m
        crossing = np.where(q < n, current[np.minimum(q, n - 1)] - centre, np.inf)
        s_ = np.clip(crossing, a, b)
        h_a, h_s, h_b = h_u[:-1], integral(s_), h_u[1:]
        area += float(np.sum(level * (s_ - a) - (h_s - h_a) + (h_b - h_s) - level * (b - s_)))
    # Above the last reference value the reference CDF is 1.
    above = int(at_or_below[-1])
    area += float((prefix[n] - prefix[above]) - (n - above) * uc[-1]) / n
    return ks, area


def ks_test(reference: np.ndarray, current: np.ndarray, statistic: float | None = None) -> tuple[float, float]:
    """KS statistic and two-sided p-value, as scipy.stats.ks_2samp (method 'auto') gives them.

    Exact p-values when both samples have at most 10,000 values; otherwise the asymptotic
    Kolmogorov distribution at n*m/(n+m), which is what scipy uses there too.
    """
    m, n = len(reference), len(current)
    if max(m, n) <= KS_EXACT_MAX_N:
        result = scipy_stats.ks_2samp(reference, current)
        return float(result.statistic), float(result.pvalue)
    if statistic is None:
        statistic = ecdf_distances(reference, current)[0]
    return statistic, ks_asymptotic_p(statistic, m, n)


def ks_asymptotic_p(statistic: float, m: int, n: int) -> float:
    """The two-sided KS p-value from the Kolmogorov distribution at n*m/(n+m) (scipy's choice
    beyond its exact range): it needs the statistic and the sizes only, not the values."""
    big, small = max(m, n), min(m, n)
    effective = round(big * small / (big + small))
    return float(np.clip(scipy_stats.kstwo.sf(statistic, effective), 0.0, 1.0))


def dkw_epsilon(n: int, alpha: float = 0.05) -> float:
    """The Dvoretzky-Kiefer-Wolfowitz bound: with probability 1 - alpha, the empirical CDF of
    n random values is within this of the true CDF everywhere (Massart's constant, 1990)."""
    return math.sqrt(math.log(2 / alpha) / (2 * n)) if n > 0 else math.inf


def wasserstein_expected_error(sorted_values: np.ndarray, sample_size: int) -> float:
    """A bound on the expected Wasserstein-1 distance between a random sample of `sample_size`
    values and the full data: J1 / sqrt(size), where J1 is the integral of sqrt(F (1 - F))
    (Bobkov and Ledoux, 2019, "One-dimensional empirical measures, order statistics, and
    Kantorovich transport distances", section 3). Computed on the full data, so it is exact
    for the reference it summarises. Zero when the sample is the full data.
    """
    n = len(sorted_values)
    if sample_size >= n or n < 2:
        return 0.0
    f = np.arange(1, n) / n
    j1 = float(np.dot(np.sqrt(f * (1 - f)), np.diff(sorted_values)))
    # Sampling without replacement from a finite population only lowers the error.
    return j1 / math.sqrt(sample_size)


@dataclass(frozen=True, slots=True)
class Chi2:
    """A chi-squared test of homogeneity between the reference and current category counts."""

    statistic: float
    p_value: float
    dof: int
    cramers_v: float  # effect size: sqrt(statistic / total count) for a 2 x k table


def _aligned(reference: Mapping[str, int], current: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(reference.keys() | current.keys())
    ref = np.fromiter((reference.get(k, 0) for k in keys), dtype=np.float64, count=len(keys))
    cur = np.fromiter((current.get(k, 0) for k in keys), dtype=np.float64, count=len(keys))
    return ref, cur


def chi2_test(reference: Mapping[str, int], current: Mapping[str, int]) -> Chi2:
    """Pearson's chi-squared on the 2 x k table of counts (reference row, current row), without
    Yates' correction: scipy.stats.chi2_contingency(table, correction=False) gives the same."""
    ref, cur = _aligned(reference, current)
    keep = (ref + cur) > 0
    table = np.vstack((ref[keep], cur[keep]))
    total = table.sum()
    dof = table.shape[1] - 1
    if dof < 1 or table[0].sum() == 0 or table[1].sum() == 0:
        return Chi2(0.0, 1.0, max(dof, 0), 0.0)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    statistic = float(np.sum((table - expected) ** 2 / expected))
    p_value = float(scipy_stats.chi2.sf(statistic, dof))
    return Chi2(statistic, p_value, dof, math.sqrt(statistic / total))


def jensenshannon(reference: Mapping[str, int], current: Mapping[str, int]) -> float:
    """Jensen-Shannon distance (natural logarithm, so at most sqrt(ln 2) = 0.83) between the
    category shares; scipy.spatial.distance.jensenshannon(p, q) gives the same."""
    ref, cur = _aligned(reference, current)
    p = ref / ref.sum()
    q = cur / cur.sum()
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / mid), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / mid), 0.0).sum()
    return float(math.sqrt(max(0.0, (kl_p + kl_q) / 2)))


def new_category_share(reference: Mapping[str, int], current: Mapping[str, int]) -> float:
    """Share of the current values whose category the reference never had."""
    total = sum(current.values())
    if total == 0:
        return 0.0
    return sum(n for key, n in current.items() if key not in reference) / total
