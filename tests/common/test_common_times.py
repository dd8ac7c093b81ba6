"""The one parser for durations and times (shipway.common.times)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from shipway.common.times import EARLIEST, TIME_HELP, parse_duration, parse_time

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("30s", 30),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1d", 86400),
        ("2w", 14 * 86400),
        (" 7D ", 7 * 86400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15 minutes", "m", "1x", "90", "-3h", "1h 30m"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"--every .* is not a duration; write it like 15m"):
        parse_duration(text, "--every")


def test_a_bare_number_is_seconds_only_where_asked_and_zero_is_refused() -> None:
    assert parse_duration("90", bare_seconds=True) == 90
    with pytest.raises(ValueError, match="must be longer than zero"):
        parse_duration("0s")
    with pytest.raises(ValueError, match="must be longer than zero"):
        parse_duration("0", bare_seconds=True)


def test_times_are_utc_unless_they_give_a_zone() -> None:
    assert parse_time("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    assert parse_time("2026-11-01T10:00:00", NOW) == datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp()
    assert parse_time("2026-11-01T10:00:00+02:00", NOW) == datetime(2026, 11, 1, 8, tzinfo=UTC).timestamp()
    assert parse_time("2026-11-01T10:00:00Z", NOW) == datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp()
    assert parse_time("24h", NOW) == NOW - 86400
    assert parse_time("1700000000", NOW) == 1_700_000_000
    assert "UTC unless" in TIME_HELP


def test_the_local_zone_does_not_move_a_date() -> None:
    # The same date read under two zones: both UTC midnight (rules backtest read it as local time once).
    code = "from shipway.common.times import parse_time; print(parse_time('2026-11-01', 2e9))"
    read = {
        zone: subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "TZ": zone}, capture_output=True, text=True, check=True
        ).stdout.strip()
        for zone in ("America/New_York", "Asia/Tokyo")
    }
    assert read["America/New_York"] == read["Asia/Tokyo"] == str(datetime(2026, 11, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("text", "problem"), [("banana", "is not a time"), ("1999-12-31", "out of range"), ("5000000000", "out of range")]
)
def test_bad_times_are_named(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=f"since='{text}'.* {problem}"):
        parse_time(text, NOW, "since")
    assert EARLIEST <= NOW
