"""Online metrics of a live service over a time window, from the store's rollups and feedback.

The names below are this package's public API (pinned by tests/test_exported_members.py),
imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipway.common.lazy import lazy_names

if TYPE_CHECKING:
    from shipway.monitoring.metrics.online import OnlineMetrics, online_metrics, recent_predictions

__all__ = ["OnlineMetrics", "online_metrics", "recent_predictions"]

_HOME = {"OnlineMetrics": "online", "online_metrics": "online", "recent_predictions": "online"}

__getattr__ = lazy_names(__name__, _HOME)
