"""Drift metrics for alert rules: one drift report per window, and a rule's number read from it.

drift.features_drifted     how many features drifted (by the thresholds in monitoring.drift)
drift.share_drifted        that count over the features that reached a verdict
drift.<feature>.drifted    1 when any method says the feature drifted, else 0
drift.<feature>.<method>   the method's statistic (PSI, KS statistic, AUC...: docs/drift.md)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.common.suggest import did_you_mean
from shipway.errors import ConfigError, DriftError
from shipway.monitoring.alerts.alert_rules import Metric

if TYPE_CHECKING:
    from shipway.monitoring.drift.comparison import DriftReport
    from shipway.monitoring.drift.profile import Profile
    from shipway.store import Store

__all__ = ["ProfileCache", "drift_report", "drift_value"]


class ProfileCache:
    """The reference profile, read again only when its file changes (a new model was deployed)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._loaded: tuple[float, Profile] | None = None

    def get(self) -> Profile:
        from shipway.monitoring.drift.profile import Profile

        if self.path is None or not self.path.exists():
            where = f" at {self.path}" if self.path is not None else ""
            raise DriftError(
                f"drift alerts need a reference profile, and there is none{where}: training writes "
                "artifacts/profile.json (see docs/drift.md)"
            )
        mtime = self.path.stat().st_mtime
        if self._loaded is None or self._loaded[0] != mtime:
            self._loaded = (mtime, Profile.load(self.path))
        return self._loaded[1]


def drift_report(
    store: Store,
    service: str,
    profile: ProfileCache,
    since: float,
    until: float,
    options: Mapping[str, Any],
    export: Path | None = None,
) -> DriftReport | None:
    """The drift of the window's traffic against the reference; None when the window is empty."""
    from shipway.monitoring.drift.comparison import compare
    from shipway.monitoring.drift.window import window_from_store

    reference = profile.get()
    window = window_from_store(store, service=service, since=since, until=until, profile=reference, export=export)
    if window.n_rows == 0:
        return None
    return compare(reference, window, **options)


def drift_value(report: DriftReport | None, metric: Metric) -> tuple[float | None, str]:
    """The metric's value in `report` and, when it has none, why. ConfigError for a feature
    or method the report does not have (the message lists those it has)."""
    if report is None:
        return None, "no successful predictions in the window to compare with the reference"
    if metric.name == "drift.features_drifted":
        return float(len(report.drifted_features)), ""
    if metric.name == "drift.share_drifted":
        return float(report.share_drifted), ""
    feature, method = metric.path[1], metric.path[2]
    by_name = {f.feature: f for f in report.features}
    if feature not in by_name:
        hint = did_you_mean(feature, by_name)
        raise ConfigError(
            f"metric {metric.name!r}: the reference profile has no feature {feature!r}.{hint} "
            f"Its features are {', '.join(sorted(by_name)) or 'none'}."
        )
    found = by_name[feature]
    if method == "drifted":
        verdict = found.drifted
        return (None, f"no drift method reached a verdict on {feature!r}") if verdict is None else (float(verdict), "")
    result = next((r for r in found.results if r.method == method), None)
    if result is None:
        ran = ", ".join(r.method for r in found.results) or "none"
        raise ConfigError(
            f"metric {metric.name!r}: the drift report has no {method!r} result for the {found.kind} feature "
            f"{feature!r}; the methods run for it are {ran} (monitoring.drift.features sets them)."
        )
    if result.value is None:
        return None, result.note or f"{method} reached no value on {feature!r}"
    return float(result.value), ""
