"""The reads behind online metrics: rollups and joined feedback, bucketed by time.

Every function returns plain rows; `shipway.monitoring.metrics.online` turns them into
rates, quantiles and per-class figures. Buckets are `step_s` wide (a multiple of
60) and start at multiples of it since the epoch; `by` groups by "model_version"
or "rules_version" ('' where none), or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipway.errors import StoreError
from shipway.store.feedback import BINS

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = [
    "dropped_count",
    "feedback_series",
    "label_breakdown",
    "latency_series",
    "prediction_series",
    "version_pairs",
]

GROUPS = ("model_version", "rules_version")


def prediction_series(
    store: Store, service: str, since: float, until: float, step_s: int, by: str | None
) -> list[tuple[Any, ...]]:
    """Rows of (bucket start, group, status, decision, count, latency sum)."""
    return _rollup_rows(
        store, "prediction_counts", "status, decision, SUM(n), SUM(latency_sum)", 2, service, since, until, step_s, by
    )


def latency_series(
    store: Store, service: str, since: float, until: float, step_s: int, by: str | None
) -> list[tuple[Any, ...]]:
    """Rows of (bucket start, group, latency bucket, count)."""
    return _rollup_rows(store, "prediction_latency", "bucket, SUM(n)", 1, service, since, until, step_s, by)


def version_pairs(store: Store, service: str, since: float, until: float, step_s: int) -> list[dict[str, Any]]:
    """One dict per model and rules version pair that answered in the window: requests, labels
    ("label" outcomes) and the first and last `step_s` bucket it answered in ('' stands for none)."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    rows = _rollup_rows(
        store, "prediction_counts", "rules_version, SUM(n)", 1, service, since, until, step_s, "model_version"
    )
    for t, model, rules, n in rows:
        pair = pairs.setdefault((model, rules), {"model_version": model, "rules_version": rules, "requests": 0})
        pair["requests"] += int(n)
        pair["first"] = min(pair.get("first", t), t)
        pair["last"] = max(pair.get("last", t), t)
    ph = store.placeholder
    labelled = store._query(
        f"SELECT COALESCE(model_version, ''), COALESCE(rules_version, ''), COUNT(*) FROM feedback "
        f"WHERE service = {ph} AND name = 'label' AND pred_ts >= {ph} AND pred_ts < {ph} GROUP BY 1, 2",
        [service, since, until],
    )
    counts = {(model, rules): int(n) for model, rules, n in labelled}
    out = [{**pair, "labelled": counts.get(key, 0)} for key, pair in pairs.items()]
    return sorted(out, key=lambda p: (-p["last"], p["model_version"], p["rules_version"]))


def _rollup_rows(
    store: Store,
    table: str,
    columns: str,
    keys: int,
    service: str,
    since: float,
    until: float,
    step_s: int,
    by: str | None,
) -> list[tuple[Any, ...]]:
    """Rows from the minute rollups, or for hourly steps from the hour rollups for whole
    hours inside the window and the minute rollups for the partial hours at its edges."""
    per, group = _check(step_s, by)
    ph = store.placeholder
    first, last = _minutes(since, until)
    spans: list[tuple[str, str, int, int, int]] = []  # table, unit, from, to, minutes per unit
    hour_from, hour_to = -(-first // 60), last // 60
    if step_s % 3600 == 0 and hour_from < hour_to:
        spans = [
            (f"{table}_hourly", "hour", hour_from, hour_to, 60),
            (table, "minute", first, hour_from * 60, 1),
            (table, "minute", hour_to * 60, last, 1),
        ]
    else:
        spans = [(table, "minute", first, last, 1)]
    group_by = ", ".join(str(i) for i in range(1, keys + 3))
    rows: list[tuple[Any, ...]] = []
    for name, unit, low, high, minutes in spans:
        if low >= high:
            continue
        per_unit = per // minutes
        sql = (
            f"SELECT ({unit} / {per_unit}) * {step_s}, {group}, {columns} FROM {name} "
            f"WHERE service = {ph} AND {unit} >= {ph} AND {unit} < {ph} GROUP BY {group_by}"
        )
        rows.extend(store._query(sql, [service, low, high]))
    return rows


def dropped_count(store: Store, service: str, since: float, until: float) -> int:
    """Prediction records answered in the window's minutes and dropped (`log_drops`)."""
    ph = store.placeholder
    first, last = _minutes(since, until)
    rows = store._query(
        f"SELECT COALESCE(SUM(n), 0) FROM log_drops WHERE service = {ph} AND minute >= {ph} AND minute < {ph}",
        [service, first, last],
    )
    return int(rows[0][0])


def feedback_series(
    store: Store, service: str, since: float, until: float, step_s: int, by: str | None
) -> list[tuple[Any, ...]]:
    """Rows of (bucket start, group, outcome name, count, top-1, top-3, top-5 hits, ranked count,
    number sum, number count), by the time of the prediction the outcome belongs to.

    Hourly steps read feedback_hourly for the whole hours inside the window and the
    feedback rows for the partial hours at its edges.
    """
    _, group = _check(step_s, by)
    ph = store.placeholder
    sums = (
        "COUNT(*), "
        + ", ".join(f"SUM(CASE WHEN rank BETWEEN 1 AND {k} THEN 1 ELSE 0 END)" for k in (1, 3, 5))
        + ", COUNT(rank), SUM(number), COUNT(number)"
    )
    bucket = store.sql_floor.format(f"pred_ts / {int(step_s)}")
    raw = (
        f"SELECT {bucket} * {int(step_s)}, {group}, name, {sums} FROM feedback "
        f"WHERE service = {ph} AND pred_ts >= {ph} AND pred_ts < {ph} GROUP BY 1, 2, 3"
    )
    first_hour, last_hour = -int(-since // 3600), int(until // 3600)
    if step_s % 3600 or first_hour >= last_hour:
        return store._query(raw, [service, since, until])
    per = step_s // 3600
    rows = store._query(
        f"SELECT (hour / {per}) * {step_s}, {group}, name, SUM(n), SUM(top1), SUM(top3), SUM(top5), SUM(ranked), "
        f"SUM(number_sum), SUM(number_count) FROM feedback_hourly "
        f"WHERE service = {ph} AND hour >= {ph} AND hour < {ph} GROUP BY 1, 2, 3",
        [service, first_hour, last_hour],
    )
    rows += store._query(raw, [service, since, first_hour * 3600])
    rows += store._query(raw, [service, last_hour * 3600, until])
    return rows


def label_breakdown(
    store: Store, service: str, since: float, until: float, name: str = "label"
) -> list[tuple[Any, ...]]:
    """Rows of (predicted, actual, confidence bin or None, count, confidence sum) for the outcome
    `name` over the window: per-class figures and calibration from one read.

    Reads feedback_daily for the whole days inside the window and the feedback rows for
    the partial days at its edges.
    """
    ph = store.placeholder
    bins = BINS
    bin_sql = store.sql_floor.format(f"confidence * {bins}")
    raw = (
        f"SELECT COALESCE(predicted, ''), COALESCE(actual, ''), CASE WHEN confidence IS NULL THEN -1 "
        f"WHEN confidence >= 1 THEN {bins - 1} WHEN confidence <= 0 THEN 0 ELSE {bin_sql} END, "
        f"COUNT(*), COALESCE(SUM(confidence), 0) FROM feedback "
        f"WHERE service = {ph} AND name = {ph} AND pred_ts >= {ph} AND pred_ts < {ph} GROUP BY 1, 2, 3"
    )
    first_day, last_day = -int(-since // 86400), int(until // 86400)
    if first_day >= last_day:
        rows = store._query(raw, [service, name, since, until])
    else:
        rows = store._query(
            "SELECT predicted, actual, bin, SUM(n), SUM(confidence_sum) FROM feedback_daily "
            f"WHERE service = {ph} AND name = {ph} AND day >= {ph} AND day < {ph} GROUP BY 1, 2, 3",
            [service, name, first_day, last_day],
        )
        rows += store._query(raw, [service, name, since, first_day * 86400])
        rows += store._query(raw, [service, name, last_day * 86400, until])
    return [(p or None, a or None, None if b < 0 else b, n, s) for p, a, b, n, s in rows if n]


def _check(step_s: int, by: str | None) -> tuple[int, str]:
    if not isinstance(step_s, int) or step_s < 60 or step_s % 60:
        raise StoreError(f"step_s must be a whole number of minutes in seconds (60, 300, 3600...), got {step_s!r}")
    if by is not None and by not in GROUPS:
        raise StoreError(f"by must be one of {', '.join(GROUPS)} or None, got {by!r}")
    return step_s // 60, "''" if by is None else by


def _minutes(since: float, until: float) -> tuple[int, int]:
    """The rollup minutes that cover [since, until): whole minutes, so edges are rounded out."""
    return int(since // 60), -int(-until // 60)
