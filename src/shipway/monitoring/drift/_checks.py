"""One feature of the window against its reference: every method's verdict and the plot data."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipway.monitoring.drift import _stats as stats
from shipway.monitoring.drift._reference import NumericReference
from shipway.monitoring.drift._summaries import KEEP_VALUES, CategoricalPart, NumericPart, TextPart
from shipway.monitoring.drift.profile import Feature
from shipway.monitoring.drift.text_drift import Embedder, domain_classifier, oov_rate
from shipway.monitoring.drift.thresholds import BY_NAME, Thresholds

__all__ = ["Context", "FeatureDrift", "Part", "Result", "check_feature", "check_part", "part_of"]

Part = NumericPart | CategoricalPart | TextPart

# Evidently divides by max(std, 0.001) so that a constant reference does not divide by zero;
# doing the same keeps the normed Wasserstein values of both tools comparable.
MIN_STD = 0.001
PLOT_CATEGORIES = 30  # bars drawn per categorical feature; the rest are summed as "other"


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(slots=True)
class Result:
    """One method's verdict on one feature.

    `value` is the method's statistic; `threshold` applies to `value`, except for the tests
    (ks, chi2), where it applies to `p_value`. `drifted` is None when no verdict could be
    reached, and `note` says why. `n_reference` and `n_current` count what the statistic used.
    """

    feature: str
    role: str
    kind: str
    method: str
    value: float | None
    threshold: float
    drifted: bool | None
    p_value: float | None
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "role": self.role,
            "kind": self.kind,
            "method": self.method,
            "value": _finite(self.value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "p_value": _finite(self.p_value),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "details": {k: _finite(v) if isinstance(v, float) else v for k, v in self.details.items()},
            "note": self.note,
        }


@dataclass(slots=True)
class FeatureDrift:
    """All verdicts on one feature, and the data to plot it."""

    feature: str
    role: str
    kind: str
    n_reference: int  # values present in the reference
    n_current: int  # values present in the window
    n_missing: int  # window rows without a value (None, NaN or absent)
    n_invalid: int  # window values of the wrong type (a string in a numeric feature...)
    results: list[Result]
    plot: dict[str, Any]

    @property
    def drifted(self) -> bool | None:
        """True if any method says drift; None if no method reached a verdict."""
        verdicts = [r.drifted for r in self.results if r.drifted is not None]
        return any(verdicts) if verdicts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "role": self.role,
            "kind": self.kind,
            "drifted": self.drifted,
            "methods": [r.method for r in self.results if r.drifted],
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "n_missing": self.n_missing,
            "n_invalid": self.n_invalid,
            "plot": self.plot,
        }


@dataclass(frozen=True, slots=True)
class Context:
    thresholds: Thresholds
    embed: Callable[[], Embedder]  # called only when a text feature needs embeddings
    seed: int = 0


def check_feature(
    feature: Feature, values: Sequence[Any] | np.ndarray, methods: tuple[str, ...], ctx: Context
) -> FeatureDrift:
    """Every method's verdict on the window's values of one feature (all of them kept)."""
    return check_part(feature, part_of(feature, values, keep=True), methods, ctx)


def part_of(feature: Feature, values: Sequence[Any] | np.ndarray, keep: bool = False) -> Part:
    """The summary of a feature's values that the checks read; parts of a window merge."""
    if feature.kind == "numeric":
        assert feature.numeric is not None  # a numeric feature always has one (profile.py)
        return NumericPart.of(values, feature.numeric, keep)
    if feature.kind == "categorical":
        return CategoricalPart.of(values)
    assert feature.text is not None
    return TextPart.of(values, feature.text.lengths, keep)


def check_part(feature: Feature, part: Part, methods: tuple[str, ...], ctx: Context) -> FeatureDrift:
    if isinstance(part, NumericPart):
        return _numeric(feature, part, methods, ctx)
    if isinstance(part, CategoricalPart):
        return _categorical(feature, part, methods, ctx)
    return _text(feature, part, methods, ctx)


class _Verdicts:
    """Builds one feature's results, each with its threshold and verdict."""

    def __init__(self, feature: Feature, n_current: int, ctx: Context) -> None:
        self.feature, self.n_current, self.ctx = feature, n_current, ctx
        self.results: list[Result] = []
        self.min_values = int(ctx.thresholds.get(feature.name, "min_values"))

    def threshold(self, method: str) -> float:
        return self.ctx.thresholds.get(self.feature.name, method)

    def add(
        self,
        method: str,
        value: float | None,
        n_reference: int,
        *,
        p_value: float | None = None,
        effect_ok: bool = True,
        n_current: int | None = None,
        details: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> None:
        threshold = self.threshold(method)
        n = self.n_current if n_current is None else n_current
        drifted: bool | None = None
        if value is None:
            note = note or "no values in the window"
        elif BY_NAME[method].drifts_when == "below":
            drifted = bool(p_value is not None and p_value < threshold and effect_ok)
        elif n < self.min_values:
            note = f"{n} values in the window, fewer than min_values = {self.min_values}: no verdict from a distance"
        else:
            drifted = bool(value >= threshold and effect_ok)
        f = self.feature
        self.results.append(
            Result(
                f.name, f.role, f.kind, method, value, threshold, drifted, p_value, n_reference, n, details or {}, note
            )
        )


def _histogram_plot(ref: NumericReference, part: NumericPart) -> dict[str, Any]:
    return {
        "type": "histogram",
        "edges": ref.edges.tolist(),
        "reference": ref.edge_counts.tolist(),
        "current": part.hist.tolist(),
        "current_below": part.below,
        "current_above": part.above,
    }


def _numeric(feature: Feature, part: NumericPart, methods: tuple[str, ...], ctx: Context) -> FeatureDrift:
    ref = feature.numeric
    assert ref is not None  # a numeric feature always has one (profile.py)
    current, n = part.values, part.n
    v = _Verdicts(feature, n, ctx)
    sample = ref.sample
    if n and current is not None and ("ks" in methods or "wasserstein" in methods):
        ks_statistic, w1 = stats.ecdf_distances(sample, current)
    elif n and "ks" in methods:
        ks_statistic = part.ks_statistic(sample)  # exact from the merged counts
    for method in methods:
        if n == 0:
            v.add(method, None, ref.count)
        elif method == "psi":
            value = stats.psi(ref.cut_counts, part.cut_counts)
            v.add(method, value, ref.count, details={"bins": len(ref.cuts) + 1})
        elif method == "ks":
            if current is not None:
                statistic, p = stats.ks_test(sample, current, ks_statistic)
            else:  # more than KS_EXACT_MAX_N values: the asymptotic p-value, as ks_test takes it
                statistic, p = ks_statistic, stats.ks_asymptotic_p(ks_statistic, len(sample), n)
            min_statistic = ctx.thresholds.get(feature.name, "ks_min_statistic")
            details = {"min_statistic": min_statistic, "reference_sample_error_95": ref.ks_error}
            v.add(method, statistic, len(sample), p_value=p, effect_ok=statistic >= min_statistic, details=details)
        elif method == "wasserstein" and current is None:
            note = f"needs the window's values; merged summaries keep them up to {KEEP_VALUES:,} values"
            v.add(method, None, len(sample), note=note)
        elif method == "wasserstein":
            norm = max(ref.std, MIN_STD)
            details = {
                "distance": w1,
                "reference_std": ref.std,
                "reference_sample_expected_error": ref.wasserstein_error / norm,
            }
            v.add(method, w1 / norm, len(sample), details=details)
    plot = _histogram_plot(ref, part)
    return FeatureDrift(
        feature.name, feature.role, feature.kind, ref.count, n, part.missing, part.invalid, v.results, plot
    )


def _categorical(feature: Feature, part: CategoricalPart, methods: tuple[str, ...], ctx: Context) -> FeatureDrift:
    ref = feature.categories
    assert ref is not None
    counts, missing = part.counts, part.missing
    n, n_ref = sum(counts.values()), sum(ref.values())
    v = _Verdicts(feature, n, ctx)
    for method in methods:
        if n == 0:
            v.add(method, None, n_ref)
        elif method == "chi2":
            test = stats.chi2_test(ref, counts)
            min_v = ctx.thresholds.get(feature.name, "chi2_min_cramers_v")
            details = {"dof": test.dof, "cramers_v": test.cramers_v, "min_cramers_v": min_v}
            v.add(
                method, test.statistic, n_ref, p_value=test.p_value, effect_ok=test.cramers_v >= min_v, details=details
            )
        elif method == "jensenshannon":
            v.add(method, stats.jensenshannon(ref, counts), n_ref)
        elif method == "new_categories":
            new = sorted(((k, c) for k, c in counts.items() if k not in ref), key=lambda kc: -kc[1])
            listed = {"new": [{"category": k, "count": c} for k, c in new[:10]], "n_new_categories": len(new)}
            v.add(method, stats.new_category_share(ref, counts), n_ref, details=listed)
    # The plot shows the categories largest on either side; the rest are summed.
    ref_total, cur_total = max(n_ref, 1), max(n, 1)
    keys = sorted(
        ref.keys() | counts.keys(), key=lambda k: -max(ref.get(k, 0) / ref_total, counts.get(k, 0) / cur_total)
    )
    shown = keys[:PLOT_CATEGORIES]
    plot = {
        "type": "bars",
        "categories": shown,
        "reference": [ref.get(k, 0) for k in shown],
        "current": [counts.get(k, 0) for k in shown],
        "other": {
            "categories": len(keys) - len(shown),
            "reference": n_ref - sum(ref.get(k, 0) for k in shown),
            "current": n - sum(counts.get(k, 0) for k in shown),
        },
    }
    return FeatureDrift(feature.name, feature.role, feature.kind, n_ref, n, missing, 0, v.results, plot)


def _text(feature: Feature, part: TextPart, methods: tuple[str, ...], ctx: Context) -> FeatureDrift:
    ref = feature.text
    assert ref is not None
    texts, lengths, missing, invalid = part.texts, part.lengths, part.missing, part.invalid
    n = lengths.n
    v = _Verdicts(feature, n, ctx)
    for method in methods:
        if n == 0:
            v.add(method, None, ref.lengths.count)
        elif method == "text_length":
            value = stats.psi(ref.lengths.cut_counts, lengths.cut_counts)
            details = {"reference_mean": ref.lengths.mean, "current_mean": lengths.mean}
            v.add(method, value, ref.lengths.count, details=details)
        elif texts is None:
            why = "needs the window's texts, which merged summaries do not keep"
            v.add(method, None, ref.n_tokens if method == "oov_rate" else len(ref.sample), note=why)
        elif method == "oov_rate":
            rate, n_tokens, unseen = oov_rate(texts, ref.vocabulary)
            rates = {
                "current_rate": rate,
                "expected_rate": ref.oov_expected,
                "top_unseen": [{"token": t, "count": c} for t, c in unseen],
            }
            note = "the window's texts hold no word tokens" if n_tokens == 0 else None
            increase = rate - ref.oov_expected if n_tokens else None
            v.add(method, increase, ref.n_tokens, n_current=n_tokens, details=rates, note=note)
        elif method == "domain_classifier":
            _domain(v, ref.sample, texts, ctx)
    plot = {**_histogram_plot(ref.lengths, lengths), "of": "length in characters"}
    return FeatureDrift(
        feature.name, feature.role, feature.kind, ref.lengths.count, n, missing, invalid, v.results, plot
    )


def _domain(v: _Verdicts, reference: list[str], texts: list[str], ctx: Context) -> None:
    method = "domain_classifier"
    if min(len(reference), len(texts)) < max(v.min_values, 5):
        fewest = min(len(reference), len(texts))
        note = f"{fewest} texts on one side, fewer than min_values = {v.min_values}: no verdict"
        v.add(method, None, len(reference), n_current=len(texts), note=note)
        return
    try:
        embed = ctx.embed()
        result = domain_classifier(reference, texts, embed, seed=ctx.seed)
    except ImportError as err:
        note = f"needs scikit-learn ({err}); pip install 'shipway[sklearn]'"
        v.add(method, None, len(reference), n_current=len(texts), note=note)
        return
    max_p = ctx.thresholds.get(v.feature.name, "domain_classifier_p_value")
    details = {"folds": result.folds, "max_p_value": max_p, "current_texts": len(texts)}
    v.add(
        method,
        result.auc,
        result.n_reference,
        p_value=result.p_value,
        effect_ok=result.p_value < max_p,
        n_current=result.n_current,
        details=details,
    )
