"""The dashboard's query parameters: a bad value is a ConfigError naming it (answered as a 400)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from shipway.errors import ConfigError
from shipway.monitoring.dashboard.snapshot import Window

__all__ = ["by", "query_float", "query_int", "window"]


def window(params: Mapping[str, str]) -> Window:
    return Window.parse(params.get("since"), params.get("until"), params.get("step"))


def by(params: Mapping[str, str]) -> str | None:
    """The split of the series: by model version (the default), by rules version, or none."""
    value = params.get("by", "model_version")
    return None if value in ("none", "") else value


def query_int(params: Mapping[str, str], key: str, default: int, most: int) -> int:
    """The whole number `key`, from 1 to `most`."""
    text = params.get(key)
    if text is None:
        return default
    value = int(text) if text.isdigit() and len(text) < 10 else 0
    if not 1 <= value <= most:
        raise ConfigError(f"{key}={text!r} is not a whole number from 1 to {most}; e.g. {key}={default}")
    return value


def query_float(params: Mapping[str, str], key: str) -> float | None:
    """The finite number `key`, or None when absent."""
    text = params.get(key)
    try:
        value = float(text) if text else None
    except ValueError:
        value = math.nan
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"{key}={text!r} is not a number (unix seconds)")
    return value
