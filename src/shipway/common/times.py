"""The one parser for durations and times, and the range of times shipway accepts from outside.

Durations: a number and a unit, or several (`90s`, `15m`, `1h30m`, `7d`, `2w`, `500ms`); units
ms, s, m, h, d, w. Times: a duration before now (`24h` means 24 hours ago), an ISO 8601 date or
date-time, or unix seconds. A date or date-time without a zone is UTC; `+02:00` or `Z` give one.
Every command that takes a time says so in its help (`TIME_HELP`).

A time before 2000 or more than a day ahead of the clock is a mistake (milliseconds sent as
seconds, a year typed wrong) that would otherwise land in the store and skew every window that
reads it; NaN and infinities are no time at all.

Errors are ValueError with the whole message (what was given, how to write it); callers turn
them into their own kind (ConfigError, a CLI usage error, a 400 answer).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = [
    "AHEAD_S",
    "EARLIEST",
    "TIME_HELP",
    "UNITS",
    "check_time",
    "iso",
    "parse_duration",
    "parse_iso",
    "parse_time",
]

EARLIEST = 946_684_800.0  # 2000-01-01T00:00:00Z
AHEAD_S = 86_400.0  # clocks disagree, but not by a day
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
TIME_HELP = (
    "a duration before now (30m, 24h, 7d), an ISO date or date-time (UTC unless it gives a zone) or unix seconds"
)

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_BARE = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str, what: str = "duration", *, bare_seconds: bool = False) -> float:
    """Seconds in `text` (`90s`, `15m`, `1h30m`, `7d`, `2w`, `500ms`; with `bare_seconds`, a plain
    number is seconds). ValueError naming `what` and how to write a duration otherwise."""
    value = text.strip().lower()
    if bare_seconds and _BARE.fullmatch(value):
        seconds = float(value)
    else:
        parts = _PART.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(
                f"{what} {text!r} is not a duration; write it like 15m, 30s, 1h, 7d or 1h30m (units ms, s, m, h, d, w)"
            )
        seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{what} {text!r} must be longer than zero, e.g. 15m")
    return seconds


def parse_time(text: str, now: float, what: str = "time") -> float:
    """Unix seconds from a duration before `now` (`7d`), an ISO date or date-time (UTC unless it
    gives a zone) or unix seconds; checked by `check_time`. ValueError saying how to write one."""
    value = text.strip()
    try:
        ts = float(value)
    except ValueError:
        parts = _PART.findall(value.lower())
        if parts and "".join(n + u for n, u in parts) == value.lower():
            ts = now - parse_duration(value, what)
        else:
            ts = parse_iso(value, what)
    return check_time(ts, now, what, repr(text))


def parse_iso(text: str, what: str = "time") -> float:
    """Unix seconds of an ISO 8601 date or date-time, UTC unless it gives a zone; ValueError otherwise."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{what}={text!r} is not a time: give a duration before now (30m, 24h, 7d), an ISO date or "
            "date-time (2024-05-01, 2024-05-01T12:00:00, UTC unless it gives a zone such as +02:00) or unix seconds"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


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
