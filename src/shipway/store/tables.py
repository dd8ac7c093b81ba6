"""Tables both backends share (schema version 4): rollups, feedback, alerts.

Written once with two type words filled in per dialect, so that SQLite and
PostgreSQL keep the same columns and the shared SQL in `rollups`, `feedback`
and `alerts` runs on both.
"""

from __future__ import annotations

__all__ = ["shared_tables"]

_TABLES = (
    # Per minute, per service, model, rules version, status and decision: how many
    # predictions and their summed latency. Kept by the prediction log's writer, so
    # the dashboard's series read thousands of rows, not millions. '' stands for none.
    """CREATE TABLE prediction_counts (
        minute BIGINT NOT NULL, service TEXT NOT NULL, model_version TEXT NOT NULL,
        rules_version TEXT NOT NULL, status INTEGER NOT NULL, decision TEXT NOT NULL,
        n BIGINT NOT NULL, latency_sum {real} NOT NULL,
        PRIMARY KEY (minute, service, model_version, rules_version, status, decision)
    )""",
    # Latency histograms on log-spaced buckets (see rollups.latency_bucket).
    """CREATE TABLE prediction_latency (
        minute BIGINT NOT NULL, service TEXT NOT NULL, model_version TEXT NOT NULL,
        rules_version TEXT NOT NULL, bucket INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (minute, service, model_version, rules_version, bucket)
    )""",
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
    "CREATE INDEX feedback_joined ON feedback (service, pred_ts)",
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


def shared_tables(*, real: str, serial: str) -> tuple[str, ...]:
    """The version-4 statements for one dialect: its float type and its id column."""
    return tuple(t.format(real=real, serial=serial) for t in _TABLES)
