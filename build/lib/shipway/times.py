"""The range of times shipway accepts from outside (feedback `ts`, dashboard windows).

A time before 2000 or more than a day ahead of the clock is a mistake (milliseconds sent
as seconds, a year typed wrong) that would otherwise land in the store and skew every
window that reads it; NaN and infinities are no time at all.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["AHEAD_S", "EARLIEST", "check_time", "iso"]

EARLIEST = 946_684_800.0  # 2000-01-01T00:00:00Z
AHEAD_S = 86_400.0  # clocks disagree, but not by a day


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
