"""Compare a window of live traffic with the reference profile: `compare(profile, window)`.

    profile = Profile.load(artifacts)
    window = window_from_store(store, service="banking77", since=time.time() - 86400, profile=profile)
    report = compare(profile, window, Thresholds.from_settings(settings))
    report.to_dict()   # the JSON the dashboard renders (docs/drift.md)

Features are checked in parallel threads: sorting and the numpy statistics release the GIL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipway.common.suggest import did_you_mean
from shipway.errors import ConfigError, DriftError
from shipway.monitoring.drift._checks import Context, FeatureDrift, Result, check_feature, check_part
from shipway.monitoring.drift.profile import Feature, Profile
from shipway.monitoring.drift.text_drift import EMBEDDERS, Embedder, embedder
from shipway.monitoring.drift.thresholds import Thresholds
from shipway.monitoring.drift.window import Window

if TYPE_CHECKING:
    from shipway.monitoring.drift.job import WindowSummary

__all__ = ["DriftReport", "FeatureDrift", "Result", "compare", "compare_summary"]

REPORT_VERSION = 1


def compare(
    profile: Profile,
    window: Window | Mapping[str, Sequence[Any]],
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    *,
    embed: str | Embedder = "auto",
    seed: int = 0,
    workers: int | None = None,
) -> DriftReport:
    """Every method's verdict on every profiled feature of `window`.

    `window` is a Window or a mapping of feature name to values. `thresholds` is a Thresholds,
    or a mapping of threshold overrides for every feature (the keys of
    `[monitoring.drift.thresholds]`). `embed` names the text embedder (auto, minilm, hashing:
    setting monitoring.drift.embedder) or is a function of texts to vectors. `seed` fixes the
    domain classifier's sampling and folds. Raises DriftError for an empty window and
    ConfigError for thresholds that name unknown features, methods or keys.
    """
    if not isinstance(window, Window):
        window = Window.from_columns(window)
    _not_empty(window.n_rows, window.excluded)
    missing: list[Any] = [None] * window.n_rows
    columns = window.columns

    def check(feature: Feature, methods: tuple[str, ...], ctx: Context) -> FeatureDrift:
        return check_feature(feature, columns.get(feature.name, missing), methods, ctx)

    return _report(profile, thresholds, check, window.to_dict(), set(columns), embed, seed, workers)


def compare_summary(
    profile: Profile,
    summary: WindowSummary,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    workers: int | None = None,
) -> DriftReport:
    """`compare` from a window's merged summary (see summaries.py): the same verdicts, except
    those that need values the summary does not keep, which say so in their note."""
    _not_empty(summary.n_rows, summary.excluded)

    def check(feature: Feature, methods: tuple[str, ...], ctx: Context) -> FeatureDrift:
        return check_part(feature, summary.parts[feature.name], methods, ctx)

    return _report(profile, thresholds, check, summary.to_dict(), set(summary.parts), "auto", seed, workers)


def _not_empty(n_rows: int, excluded: dict[str, int]) -> None:
    if n_rows == 0:
        left_out = f" ({excluded} left out)" if excluded else ""
        raise DriftError(
            f"the window holds no rows{left_out}: there is nothing to compare with the reference. "
            "Widen the time range, or check that the service logs predictions (log.enabled)."
        )


def _report(
    profile: Profile,
    thresholds: Thresholds | Mapping[str, Any] | None,
    check: Callable[[Feature, tuple[str, ...], Context], FeatureDrift],
    window: dict[str, Any],
    columns: set[str],
    embed: str | Embedder,
    seed: int,
    workers: int | None,
) -> DriftReport:
    if thresholds is None:
        thresholds = Thresholds()
    elif not isinstance(thresholds, Thresholds):
        thresholds = Thresholds(thresholds, where="compare(thresholds=...)")
    names = {f.name for f in profile.features}
    for name in thresholds.unknown_features(names):
        hint = did_you_mean(name, names)
        raise ConfigError(
            f"drift settings name feature {name!r}, which the profile does not have.{hint} "
            f"The profiled features are: {', '.join(sorted(names))}."
        )
    plan = [(f, thresholds.methods(f.name, f.kind)) for f in profile.features]
    chosen = _LazyEmbedder(embed)
    ctx = Context(thresholds, chosen.get, seed)

    def run(item: tuple[Feature, tuple[str, ...]]) -> FeatureDrift:
        return check(item[0], item[1], ctx)

    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(plan) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shipway-drift") as pool:
            features = list(pool.map(run, plan))
    else:
        features = [run(item) for item in plan]
    return DriftReport(
        features=features,
        drift_share=thresholds.get("", "drift_share"),
        window=window,
        profile={"created_at": profile.created_at, "n_rows": profile.n_rows, "meta": profile.meta},
        thresholds=thresholds.to_dict(),
        embedder=chosen.name,
        unprofiled=sorted(columns - names),
    )


@dataclass(slots=True)
class DriftReport:
    """Every feature's verdicts for one window against one reference profile."""

    features: list[FeatureDrift]
    drift_share: float  # share of drifted features at which the window counts as drifted
    window: dict[str, Any]
    profile: dict[str, Any]
    thresholds: dict[str, Any]
    embedder: str | None = None
    unprofiled: list[str] = field(default_factory=list)  # window columns the profile does not know

    @property
    def results(self) -> list[Result]:
        return [r for f in self.features for r in f.results]

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def share_drifted(self) -> float:
        judged = [f for f in self.features if f.drifted is not None]
        return len(self.drifted_features) / len(judged) if judged else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.drifted_features) and self.share_drifted >= self.drift_share

    def result(self, feature: str, method: str) -> Result:
        """The verdict of `method` on `feature` (KeyError listing what there is otherwise)."""
        for r in self.results:
            if r.feature == feature and r.method == method:
                return r
        have = [(r.feature, r.method) for r in self.results]
        raise KeyError(f"no result for {feature!r} by {method!r}; the report has {have}")

    def summary(self) -> dict[str, Any]:
        results = self.results
        return {
            "dataset_drift": self.dataset_drift,
            "n_features": len(self.features),
            "n_drifted": len(self.drifted_features),
            "share_drifted": self.share_drifted,
            "drift_share": self.drift_share,
            "drifted_features": self.drifted_features,
            "prediction_drift": any(f.drifted for f in self.features if f.role == "output"),
            "n_checks": len(results),
            "n_drifted_checks": sum(1 for r in results if r.drifted),
            "n_no_verdict": sum(1 for r in results if r.drifted is None),
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data; its shape is documented in docs/drift.md."""
        return {
            "version": REPORT_VERSION,
            "summary": self.summary(),
            "window": self.window,
            "profile": self.profile,
            "embedder": self.embedder,
            "unprofiled": self.unprofiled,
            "thresholds": self.thresholds,
            "features": [f.to_dict() for f in self.features],
            "results": [r.to_dict() for r in self.results],
        }


class _LazyEmbedder:
    """Resolves the embedder once, on first use, so that reports without text never import it."""

    def __init__(self, embed: str | Embedder) -> None:
        self.embed = embed
        self.name: str | None = None
        self.fn: Embedder | None = None
        self.lock = threading.Lock()
        if not isinstance(embed, str):
            self.name, self.fn = getattr(embed, "__name__", "custom"), embed
        elif embed not in EMBEDDERS:
            embedder(embed)  # raises ConfigError naming the choices, before any work

    def get(self) -> Embedder:
        with self.lock:
            if self.fn is None:
                assert isinstance(self.embed, str)
                self.name, self.fn = embedder(self.embed)
            return self.fn
