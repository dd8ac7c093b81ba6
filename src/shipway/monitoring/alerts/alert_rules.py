"""Alert rules: a metric, a threshold and a window; and the channels alerts are sent to.

`shipway.monitoring.alerts.alert_file` reads them from alerts.yaml. The metric names, the windows
and what happens when a rule fires are in docs/alerts.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipway.common.suggest import did_you_mean
from shipway.monitoring.drift.thresholds import BY_NAME as DRIFT_METHODS

__all__ = [
    "AlertRule",
    "AlertRules",
    "Channel",
    "Metric",
    "parse_metric",
]

TOP_KEYS = ("channels", "alerts")
RULE_KEYS = (
    "name",
    "description",
    "metric",
    "above",
    "below",
    "window",
    "min_requests",
    "min_labelled",
    "severity",
    "channels",
)
CHANNEL_KINDS = ("slack", "webhook")
SEVERITIES = ("info", "warning", "critical")

# Metric name -> what counts as its sample: "requests" (predictions in the window),
# "labelled" (predictions with a label), "outcome" (that outcome's count) or "none".
FIXED_METRICS: dict[str, str] = {
    "requests": "none",
    "log_dropped": "none",
    "errors": "requests",
    "error_rate": "requests",
    "latency_ms.mean": "requests",
    "latency_ms.p50": "requests",
    "latency_ms.p90": "requests",
    "latency_ms.p99": "requests",
    "labelled": "requests",
    "coverage": "requests",
    "review_rate": "requests",
    "accuracy": "labelled",
    "calibration.ece": "labelled",
    # The metrics of score and ranked outputs (docs/feedback.md#what-kind-of-output).
    **dict.fromkeys(
        ("binary.roc_auc", "binary.pr_auc", "binary.brier", "binary.log_loss", "binary.accuracy"), "labelled"
    ),
    **dict.fromkeys(("regression.mae", "regression.rmse", "regression.bias"), "labelled"),
    **dict.fromkeys(("ranking.mrr", "ranking.listed"), "labelled"),
    "drift.features_drifted": "requests",
    "drift.share_drifted": "requests",
}
# Families with a name inside: (pattern, example, sample).
FAMILIES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"top_k\.(\d+)"), "top_k.<k>", "labelled"),
    (re.compile(r"ranking\.(hit_rate|ndcg)\.(\d+)"), "ranking.ndcg.<k>", "labelled"),
    (re.compile(r"routing\.(.+)"), "routing.<queue>", "requests"),
    (re.compile(r"rules_fired\.(.+)"), "rules_fired.<rule>", "requests"),
    (re.compile(r"per_class\.(.+)\.(precision|recall|support)"), "per_class.<label>.recall", "labelled"),
    (re.compile(r"outcomes\.(.+)\.(mean|count)"), "outcomes.<name>.mean", "outcome"),
    (re.compile(r"drift\.(.+)\.([A-Za-z_][A-Za-z0-9_]*)"), "drift.<feature>.<method>", "requests"),
)
METRIC_NAMES = (*FIXED_METRICS, *(example for _, example, _ in FAMILIES))


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric name, split into where its value is found.

    `path` leads into the totals of `shipway.monitoring.metrics.online.online_metrics`, except
    for drift metrics: `("drift", feature, method)` or `("drift", "features_drifted")`.
    """

    name: str
    path: tuple[str, ...]
    sample: str  # requests, labelled, outcome or none

    @property
    def is_drift(self) -> bool:
        return self.path[0] == "drift"


@dataclass(frozen=True, slots=True)
class Channel:
    """Where an alert is sent: a Slack incoming webhook or a generic JSON webhook.

    `unset` names the environment variable the URL needs and did not find: such a channel
    is kept (its rules still evaluate), and every message to it fails with that reason, unless
    the file marked the variable optional (`${NAME:-}`): then the channel is off and sends nothing.
    """

    name: str
    kind: str  # slack or webhook
    url: str
    unset: str | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A metric compared with a threshold over a window that ends at each evaluation."""

    name: str
    metric: Metric
    comparison: str  # above or below
    threshold: float
    window: str  # as written, e.g. "15m"
    window_s: float
    min_requests: int
    min_labelled: int
    severity: str = "warning"
    channels: tuple[str, ...] = ()
    description: str = ""
    where: str = ""  # file:line of the rule

    def breached(self, value: float) -> bool:
        """True when `value` is on the wrong side of the threshold (strictly)."""
        return value > self.threshold if self.comparison == "above" else value < self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric.name,
            "comparison": self.comparison,
            "threshold": self.threshold,
            "window": self.window,
            "min_requests": self.min_requests,
            "min_labelled": self.min_labelled,
            "severity": self.severity,
            "channels": list(self.channels),
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class AlertRules:
    """The rules of one alerts file and the channels they send to."""

    rules: tuple[AlertRule, ...]
    channels: Mapping[str, Channel]
    path: Path | None = None
    warnings: tuple[str, ...] = ()  # file:line: what will not work, though the file can be used

    @property
    def uses_drift(self) -> bool:
        return any(r.metric.is_drift for r in self.rules)


def parse_metric(name: str) -> Metric:
    """The metric `name` names; ValueError listing the metric names when it names none."""
    if name in FIXED_METRICS:
        return Metric(name, tuple(name.split(".")), FIXED_METRICS[name])
    for pattern, _, sample in FAMILIES:
        match = pattern.fullmatch(name)
        if match:
            family = name.split(".", 1)[0]
            if family == "drift" and match.group(2) not in (*DRIFT_METHODS, "drifted"):
                raise ValueError(
                    f"metric {name!r} names the drift method {match.group(2)!r}, which does not exist."
                    f"{did_you_mean(match.group(2), DRIFT_METHODS)} The methods are {', '.join(DRIFT_METHODS)}, or `drifted` for the verdict "
                    "(docs/drift.md)"
                )
            return Metric(name, (family, *match.groups()), sample)
    hint = did_you_mean(name, METRIC_NAMES)
    raise ValueError(f"unknown metric {name!r}.{hint} The metrics are {', '.join(METRIC_NAMES)} (docs/alerts.md)")
