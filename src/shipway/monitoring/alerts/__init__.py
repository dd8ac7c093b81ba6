"""Alerts: rules read from alerts.yaml, evaluated over the store, and sent when they change.

    alerter = Alerter(load_alerts("alerts.yaml"), "banking77", "sqlite:///.shipway/shipway.db")

The names below are this package's public API (pinned by tests/test_exported_members.py),
imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipway.common.lazy import lazy_names

if TYPE_CHECKING:
    from shipway.monitoring.alerts.alert_file import load_alerts, parse_alerts
    from shipway.monitoring.alerts.alert_rules import AlertRule, AlertRules, Channel, Metric
    from shipway.monitoring.alerts.alerter import Alerter, Evaluation

__all__ = [
    "AlertRule",
    "AlertRules",
    "Alerter",
    "Channel",
    "Evaluation",
    "Metric",
    "load_alerts",
    "parse_alerts",
]

_HOME = {
    "AlertRule": "alert_rules",
    "AlertRules": "alert_rules",
    "Alerter": "alerter",
    "Channel": "alert_rules",
    "Evaluation": "alerter",
    "Metric": "alert_rules",
    "load_alerts": "alert_file",
    "parse_alerts": "alert_file",
}

__getattr__ = lazy_names(__name__, _HOME)
