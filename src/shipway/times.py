"""The range of times shipway accepts from outside (feedback `ts`, dashboard windows), and
durations written the way people write them (`30m`, `1h30m`).

A time before 2000 or more than a day ahead of the clock is a mistake (milliseconds sent
as seconds, a year typed wrong) that would otherwise land in the store and skew every
window that reads it; NaN and infinities are no time at all.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["AHEAD_S", "EARLIEST", "check_time", "iso", "parse_duration"]

EARLIEST = 946_684_800.0  # 2000-01-01T00:00:00Z
AHEAD_S = 86_400.0  # clocks disagree, but not by a day
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def check_time(ts: float, now: float, what: str, text: str | None = None) -> float:
    """`ts` (unix seconds) when it is finite, from 2000 on and at most a day after `now`;
    else ValueError naming `what`, the value as given (`text`, else `ts`) and the range."""
    if not math.isfinite(ts) or not EARLIEST <= ts <= now + AHEAD_S:
        when = iso(ts) if text is None else ""
        raise ValueError(
            f"{what}={text if text is not None else repr(ts)}{f' ({when})' if when else ''} is out of range: a time must be from {iso(EARLIEST)} to a day after now "
            f"({iso(now + AHEAD_S)}), in unix seconds (not milliseconds) or ISO 8601"
        )
    return ts


def iso(ts: float) -> str:
    """`ts` as an ISO 8601 UTC time, to the second; empty for a time no calendar holds."""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return ""


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in '90s', '15m', '1h', '1d' or '1h30m'; ValueError naming `what` and how to write it."""
    value = str(text).strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(
            f"{what} {text!r} is not a duration; write it like 90s, 15m, 1h, 1d or 1h30m (units s, m, h, d)"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{what} {text!r} must be longer than zero, e.g. 15m")
    return seconds
