"""Tables both backends share (schema version 4): rollups, feedback, alerts.

Written once with two type words filled in per dialect, so that SQLite and
PostgreSQL keep the same columns and the shared SQL in `rollups`, `feedback`
and `alerts` runs on both.
"""

from __future__ import annotations

__all__ = ["LOG_DROPS", "hourly_backfill", "shared_tables"]

_TABLES = (
    # Per minute (and, in the *_hourly twins, per hour), per service, model, rules version,
    # status and decision: how many predictions and their summed latency. Kept by the
    # prediction log's writer, so metrics over millions of predictions read thousands of
    # rows. '' stands for none.
    *(
        f"""CREATE TABLE prediction_counts{suffix} (
        {unit} BIGINT NOT NULL, service TEXT NOT NULL, model_version TEXT NOT NULL,
        rules_version TEXT NOT NULL, status INTEGER NOT NULL, decision TEXT NOT NULL,
        n BIGINT NOT NULL, latency_sum {{real}} NOT NULL,
        PRIMARY KEY ({unit}, service, model_version, rules_version, status, decision)
    )"""
        for unit, suffix in (("minute", ""), ("hour", "_hourly"))
    ),
    # Latency histograms on log-spaced buckets (see rollups.latency_bucket).
    *(
        f"""CREATE TABLE prediction_latency{suffix} (
        {unit} BIGINT NOT NULL, service TEXT NOT NULL, model_version TEXT NOT NULL,
        rules_version TEXT NOT NULL, bucket INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY ({unit}, service, model_version, rules_version, bucket)
    )"""
        for unit, suffix in (("minute", ""), ("hour", "_hourly"))
    ),
    # One row per (request, outcome name); the prediction's ids and what it predicted are
    # copied in when the two are joined (pred_ts NULL: no prediction found yet).
    """CREATE TABLE feedback (
        id {serial},
        request_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
        actual TEXT, number {real}, ts {real} NOT NULL, received {real} NOT NULL,
        service TEXT, pred_ts {real}, model_version TEXT, rules_version TEXT,
        predicted TEXT, confidence {real}, rank INTEGER,
        UNIQUE (request_id, name)
    )""",
    # Covering the per-class and calibration read, which scans a window's labels.
    "CREATE INDEX feedback_joined ON feedback (service, name, pred_ts, predicted, actual, confidence)",
    # Per hour of the predictions they belong to: the sums behind accuracy, top-k and
    # outcome means, kept as feedback is joined (and un-counted when a duplicate replaces it).
    """CREATE TABLE feedback_hourly (
        hour BIGINT NOT NULL, service TEXT NOT NULL, model_version TEXT NOT NULL,
        rules_version TEXT NOT NULL, name TEXT NOT NULL, n BIGINT NOT NULL, top1 BIGINT NOT NULL,
        top3 BIGINT NOT NULL, top5 BIGINT NOT NULL, ranked BIGINT NOT NULL, number_sum {real} NOT NULL,
        number_count BIGINT NOT NULL,
        PRIMARY KEY (hour, service, model_version, rules_version, name)
    )""",
    # Per day: predicted against actual per confidence bin (-1: no confidence; '' for none),
    # behind per-class precision and recall and calibration over long windows.
    """CREATE TABLE feedback_daily (
        day BIGINT NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL, predicted TEXT NOT NULL,
        actual TEXT NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL, confidence_sum {real} NOT NULL,
        PRIMARY KEY (day, service, name, predicted, actual, bin)
    )""",
    "CREATE INDEX feedback_pending ON feedback (received) WHERE pred_ts IS NULL",
    """CREATE TABLE alert_state (
        service TEXT NOT NULL, key TEXT NOT NULL, firing INTEGER NOT NULL, since {real} NOT NULL,
        PRIMARY KEY (service, key)
    )""",
    """CREATE TABLE alert_events (
        id {serial}, service TEXT NOT NULL, key TEXT NOT NULL, firing INTEGER NOT NULL,
        ts {real} NOT NULL, detail TEXT NOT NULL
    )""",
    "CREATE INDEX alert_events_service ON alert_events (service, ts)",
)

_HOURLY_BACKFILL = (
    """INSERT INTO prediction_counts_hourly
        SELECT minute / 60, service, model_version, rules_version, status, decision, SUM(n), SUM(latency_sum)
        FROM prediction_counts GROUP BY 1, 2, 3, 4, 5, 6""",
    """INSERT INTO prediction_latency_hourly
        SELECT minute / 60, service, model_version, rules_version, bucket, SUM(n)
        FROM prediction_latency GROUP BY 1, 2, 3, 4, 5""",
)


# Schema version 5: per minute and service, the prediction records that were answered and
# then dropped (a full buffer, or neither the store nor the spool took them). The writer adds
# to it once the store takes writes again; alert rules read it as `log_dropped`.
LOG_DROPS = """CREATE TABLE log_drops (
    minute BIGINT NOT NULL, service TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (minute, service)
)"""


def hourly_backfill() -> tuple[str, ...]:
    """After the minute rollups of older rows are filled in: their hours."""
    return _HOURLY_BACKFILL


def shared_tables(*, real: str, serial: str) -> tuple[str, ...]:
    """The version-4 statements for one dialect: its float type and its id column."""
    return tuple(t.format(real=real, serial=serial) for t in _TABLES)
