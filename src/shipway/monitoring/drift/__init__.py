"""Drift: the reference profile kept at training time, live windows, and their comparison.

    profile = Profile.load(artifacts)
    report = compare(profile, window_from_store(store, "banking77", since=..., profile=profile))

The names below are this package's public API (pinned by tests/test_exported_members.py); they
are imported on first use, so reading a threshold does not load numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipway.common.lazy import lazy_names

if TYPE_CHECKING:
    from shipway.monitoring.drift.comparison import DriftReport, compare, compare_summary
    from shipway.monitoring.drift.job import DriftJob, WindowSummary, merged
    from shipway.monitoring.drift.profile import Profile
    from shipway.monitoring.drift.thresholds import Thresholds
    from shipway.monitoring.drift.window import Window, window_from_records, window_from_store

__all__ = [
    "DriftJob",
    "DriftReport",
    "Profile",
    "Thresholds",
    "Window",
    "WindowSummary",
    "compare",
    "compare_summary",
    "merged",
    "window_from_records",
    "window_from_store",
]

_HOME = {
    "DriftJob": "job",
    "DriftReport": "comparison",
    "Profile": "profile",
    "Thresholds": "thresholds",
    "Window": "window",
    "WindowSummary": "job",
    "compare": "comparison",
    "compare_summary": "comparison",
    "merged": "job",
    "window_from_records": "window",
    "window_from_store": "window",
}

__getattr__ = lazy_names(__name__, _HOME)
