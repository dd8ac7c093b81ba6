"""The reads behind online metrics: rollups and joined feedback, bucketed by time.

Every function returns plain rows; `shipway.monitoring.metrics` turns them into
rates, quantiles and per-class figures. Buckets are `step_s` wide (a multiple of
60) and start at multiples of it since the epoch; `by` groups by "model_version"
or "rules_version" ('' where none), or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipway.errors import StoreError

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = ["calibration", "confusion", "feedback_series", "latency_series", "prediction_series"]

GROUPS = ("model_version", "rules_version")


def prediction_series(
    store: Store, service: str, since: float, until: float, step_s: int, by: str | None
) -> list[tuple[Any, ...]]:
    """Rows of (bucket start, group, status, decision, count, latency sum)."""
    per, group = _check(step_s, by)
    ph = store.placeholder
    sql = (
        f"SELECT (minute / {per}) * {per * 60}, {group}, status, decision, SUM(n), SUM(latency_sum) "
        f"FROM prediction_counts WHERE service = {ph} AND minute >= {ph} AND minute < {ph} GROUP BY 1, 2, 3, 4"
    )
    return store._query(sql, [service, *_minutes(since, until)])


def latency_series(
    store: Store, service: str, since: float, until: float, step_s: int, by: str | None
) -> list[tuple[Any, ...]]:
    """Rows of (bucket start, group, latency bucket, count)."""
    per, group = _check(step_s, by)
    ph = store.placeholder
    sql = (
        f"SELECT (minute / {per}) * {per * 60}, {group}, bucket, SUM(n) "
        f"FROM prediction_latency WHERE service = {ph} AND minute >= {ph} AND minute < {ph} GROUP BY 1, 2, 3"
    )
    return store._query(sql, [service, *_minutes(since, until)])


def feedback_series(
    store: Store, service: str, since: float, until: float, step_s: int, by: str | None
) -> list[tuple[Any, ...]]:
    """Rows of (bucket start, group, outcome name, count, top-1, top-3, top-5 hits, ranked count,
    number sum, number count), by the time of the prediction the outcome belongs to."""
    _, group = _check(step_s, by)
    ph = store.placeholder
    bucket = store.sql_floor.format(f"pred_ts / {int(step_s)}")
    sql = (
        f"SELECT {bucket} * {int(step_s)}, {group}, name, COUNT(*), "
        "SUM(CASE WHEN rank = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN rank <= 3 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN rank <= 5 THEN 1 ELSE 0 END), COUNT(rank), SUM(number), COUNT(number) "
        f"FROM feedback WHERE service = {ph} AND pred_ts >= {ph} AND pred_ts < {ph} GROUP BY 1, 2, 3"
    )
    return store._query(sql, [service, since, until])


def confusion(store: Store, service: str, since: float, until: float, name: str = "label") -> list[tuple[Any, ...]]:
    """Rows of (predicted, actual, count) for the outcome `name` over the window."""
    ph = store.placeholder
    sql = (
        "SELECT predicted, actual, COUNT(*) FROM feedback "
        f"WHERE service = {ph} AND pred_ts >= {ph} AND pred_ts < {ph} AND name = {ph} GROUP BY 1, 2"
    )
    return store._query(sql, [service, since, until, name])


def calibration(
    store: Store, service: str, since: float, until: float, bins: int = 10, name: str = "label"
) -> list[tuple[Any, ...]]:
    """Rows of (bin, count, confidence sum, correct count) over `bins` equal-width confidence bins."""
    ph = store.placeholder
    bin_of = store.sql_floor.format(f"confidence * {int(bins)}")
    sql = (
        f"SELECT CASE WHEN confidence >= 1 THEN {int(bins) - 1} ELSE {bin_of} END, COUNT(*), SUM(confidence), "
        "SUM(CASE WHEN rank = 1 THEN 1 ELSE 0 END) FROM feedback "
        f"WHERE service = {ph} AND pred_ts >= {ph} AND pred_ts < {ph} AND name = {ph} "
        "AND confidence IS NOT NULL AND rank IS NOT NULL GROUP BY 1"
    )
    return store._query(sql, [service, since, until, name])


def _check(step_s: int, by: str | None) -> tuple[int, str]:
    if not isinstance(step_s, int) or step_s < 60 or step_s % 60:
        raise StoreError(f"step_s must be a whole number of minutes in seconds (60, 300, 3600...), got {step_s!r}")
    if by is not None and by not in GROUPS:
        raise StoreError(f"by must be one of {', '.join(GROUPS)} or None, got {by!r}")
    return step_s // 60, "''" if by is None else by


def _minutes(since: float, until: float) -> tuple[int, int]:
    """The rollup minutes that cover [since, until): whole minutes, so edges are rounded out."""
    return int(since // 60), -int(-until // 60)
