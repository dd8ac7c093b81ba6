"""Drift thresholds: one table of defaults, overridden for all features or per feature.

In shipway.toml:

    [monitoring.drift.thresholds]       # every feature
    psi = 0.25

    [monitoring.drift.features.amount]  # one feature (quote dotted names: ."output.intent")
    wasserstein = 0.2
    methods = ["psi", "wasserstein"]    # which methods run for it (default: all of its kind)

docs/drift.md explains each default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipway.common.suggest import did_you_mean
from shipway.errors import ConfigError

__all__ = ["METHODS", "PARAMETERS", "Method", "Parameter", "Thresholds"]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    kind: str  # the feature kind it applies to
    drifts_when: str  # "above": value >= threshold; "below": p-value < threshold


@dataclass(frozen=True, slots=True)
class Parameter:
    key: str
    default: float
    minimum: float
    maximum: float
    help: str


METHODS: tuple[Method, ...] = (
    Method("psi", "numeric", "above"),
    Method("ks", "numeric", "below"),
    Method("wasserstein", "numeric", "above"),
    Method("chi2", "categorical", "below"),
    Method("jensenshannon", "categorical", "above"),
    Method("new_categories", "categorical", "above"),
    Method("text_length", "text", "above"),
    Method("oov_rate", "text", "above"),
    Method("domain_classifier", "text", "above"),
)
BY_NAME = {m.name: m for m in METHODS}

# The defaults, with the reasons in docs/drift.md.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "psi", 0.2, 0, 100, "PSI at or above which a numeric feature drifted (0.1-0.2: moderate; 0.2+: significant)."
    ),
    Parameter("ks", 0.05, 0, 1, "KS test p-value below which a numeric feature drifted (with ks_min_statistic)."),
    Parameter("ks_min_statistic", 0.05, 0, 1, "Smallest KS statistic (largest CDF gap) that counts as drift."),
    Parameter(
        "wasserstein",
        0.1,
        0,
        1e9,
        "Wasserstein-1 distance over the reference's standard deviation (Evidently's default).",
    ),
    Parameter(
        "chi2", 0.05, 0, 1, "Chi-squared p-value below which a categorical feature drifted (with chi2_min_cramers_v)."
    ),
    Parameter(
        "chi2_min_cramers_v",
        0.1,
        0,
        1,
        "Smallest Cramér's V (effect size) that counts as drift; 0.1 is Cohen's 'small'.",
    ),
    Parameter("jensenshannon", 0.1, 0, 1, "Jensen-Shannon distance of category shares (Evidently's default)."),
    Parameter("new_categories", 0.01, 0, 1, "Share of window values in categories the reference never had."),
    Parameter("text_length", 0.2, 0, 100, "PSI of text lengths in characters."),
    Parameter(
        "oov_rate",
        0.05,
        0,
        1,
        "Rise of the out-of-vocabulary token rate over the rate expected of reference-like text.",
    ),
    Parameter(
        "domain_classifier",
        0.6,
        0.5,
        1,
        "Cross-validated ROC AUC of a classifier telling window texts from reference texts.",
    ),
    Parameter(
        "domain_classifier_p_value",
        0.05,
        0,
        1,
        "The domain classifier's AUC must also be this unlikely under no drift.",
    ),
    Parameter(
        "min_values",
        30,
        0,
        1e12,
        "Fewest window values for a verdict from a distance (PSI, Wasserstein, JS, shares, AUC).",
    ),
    Parameter(
        "drift_share",
        0.5,
        0,
        1,
        "Share of drifted features at which the whole window counts as drifted (Evidently's default).",
    ),
)
DEFAULTS: dict[str, float] = {p.key: p.default for p in PARAMETERS}
_BY_KEY = {p.key: p for p in PARAMETERS}
GLOBAL_ONLY = frozenset({"drift_share"})


class Thresholds:
    """The thresholds in force: defaults, then `overrides` for every feature, then per feature.

    `features` maps a feature name to a table of parameter overrides, plus an optional
    `methods` list choosing which methods run for it. Bad keys or values raise ConfigError.
    """

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        features: Mapping[str, Mapping[str, Any]] | None = None,
        where: str = "monitoring.drift",
    ) -> None:
        self.overrides = _checked(overrides or {}, f"{where}.thresholds", allow_methods=False)
        self.features: dict[str, dict[str, Any]] = {}
        self.where = where
        for name, table in (features or {}).items():
            if not isinstance(table, Mapping):
                raise ConfigError(
                    f"{where}.features.{name} must be a table of thresholds such as {{psi = 0.3}}, got {table!r}."
                )
            self.features[name] = _checked(table, f"{where}.features.{name}", allow_methods=True)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Thresholds:
        """Thresholds from loaded settings (`monitoring.drift.thresholds` and `.features`)."""
        return cls(settings["monitoring.drift.thresholds"], settings["monitoring.drift.features"])

    def get(self, feature: str, key: str) -> float:
        table = self.features.get(feature, {})
        if key in table:
            return float(table[key])
        return float(self.overrides.get(key, DEFAULTS[key]))

    def methods(self, feature: str, kind: str) -> tuple[str, ...]:
        """The methods to run for a feature of this kind."""
        chosen = self.features.get(feature, {}).get("methods")
        if chosen is None:
            return tuple(m.name for m in METHODS if m.kind == kind)
        wrong = [name for name in chosen if BY_NAME[name].kind != kind]
        if wrong:
            fitting = ", ".join(m.name for m in METHODS if m.kind == kind)
            raise ConfigError(
                f"{self.where}.features.{feature}.methods has {wrong}, which do not apply to a {kind} feature; "
                f"use some of: {fitting}."
            )
        return tuple(chosen)

    def unknown_features(self, known: set[str]) -> list[str]:
        return sorted(set(self.features) - known)

    def to_dict(self) -> dict[str, Any]:
        return {"defaults": dict(DEFAULTS), "overrides": dict(self.overrides), "features": dict(self.features)}


def _checked(table: Mapping[str, Any], where: str, *, allow_methods: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "methods" and allow_methods:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}.methods must be a list of method names, got {value!r}.")
            unknown = [v for v in value if v not in BY_NAME]
            if unknown:
                raise ConfigError(
                    f"{where}.methods names unknown methods {unknown}; the methods are: {', '.join(BY_NAME)}."
                )
            out[key] = list(value)
            continue
        param = _BY_KEY.get(key)
        if param is None or (allow_methods and key in GLOBAL_ONLY):
            names = [p for p in _BY_KEY if not (allow_methods and p in GLOBAL_ONLY)] + (
                ["methods"] if allow_methods else []
            )
            hint = did_you_mean(key, names)
            raise ConfigError(f"unknown drift threshold {where}.{key}.{hint} The keys are: {', '.join(names)}.")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}.{key} must be a number, got {value!r}. Default: {param.default:g}.")
        if not param.minimum <= value <= param.maximum:
            raise ConfigError(
                f"{where}.{key} is {value!r}; it must be between {param.minimum:g} and {param.maximum:g}. "
                f"Default: {param.default:g}."
            )
        out[key] = float(value)
    return out
