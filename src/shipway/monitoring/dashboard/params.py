"""The dashboard's query parameters: a bad value is a ConfigError naming it (answered as a 400)."""

from __future__ import annotations

from collections.abc import Mapping

from shipway.monitoring.dashboard.snapshot import Window
from shipway.web.http import query_float, query_int  # the one reading of numbers in a query

__all__ = ["by", "query_float", "query_int", "window"]


def window(params: Mapping[str, str]) -> Window:
    return Window.parse(params.get("since"), params.get("until"), params.get("step"))


def by(params: Mapping[str, str]) -> str | None:
    """The split of the series: by model version (the default), by rules version, or none."""
    value = params.get("by", "model_version")
    return None if value in ("none", "") else value
