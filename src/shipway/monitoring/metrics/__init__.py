"""Online metrics of a live service over a time window, from the store's rollups and feedback.

The names below are this package's public API (pinned by tests/test_exported_members.py),
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipway.monitoring.metrics.online import OnlineMetrics, online_metrics, recent_predictions

__all__ = ["OnlineMetrics", "online_metrics", "recent_predictions"]

_HOME = {"OnlineMetrics": "online", "online_metrics": "online", "recent_predictions": "online"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
