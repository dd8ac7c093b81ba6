"""The SQLite store's schema: migrations from version 1 to now, append only."""

from __future__ import annotations

from shipway.store.annotations import annotation_tables
from shipway.store.candidates import candidate_tables
from shipway.store.outcome_rollups import outcome_tables, rank_backfill
from shipway.store.registry import registry_tables
from shipway.store.run_tables import run_tables
from shipway.store.tables import LOG_DROPS, hourly_backfill, shared_tables

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]


# Rollups of what older versions logged, so the metrics see it too.
BACKFILL = (
    """INSERT INTO prediction_counts
        SELECT CAST(p.ts / 60 AS INTEGER), c.service, c.model_version, COALESCE(c.rules_version, ''),
               p.status, COALESCE(p.decision, ''), COUNT(*), SUM(p.latency_ms)
        FROM prediction_rows p JOIN contexts c ON c.id = p.context_id GROUP BY 1, 2, 3, 4, 5, 6""",
    """INSERT INTO prediction_latency
        SELECT CAST(p.ts / 60 AS INTEGER), c.service, c.model_version, COALESCE(c.rules_version, ''),
               CASE WHEN p.latency_ms <= 0.001 THEN 0 ELSE 1 + CAST(ln(p.latency_ms / 0.001) / ln(1.1) AS INTEGER) END,
               COUNT(*)
        FROM prediction_rows p JOIN contexts c ON c.id = p.context_id GROUP BY 1, 2, 3, 4, 5""",
)


def _history_table(name: str) -> str:
    """The rules and model histories share one shape: an append-only event log per service."""
    return (
        f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, service TEXT NOT NULL, version TEXT NOT NULL, "
        f"action TEXT NOT NULL, ts REAL NOT NULL, actor TEXT, options TEXT NOT NULL, source TEXT NOT NULL)"
    )


# Each entry brings the schema from the previous version to this one; append only.
# The ids every prediction of one process shares (service, model, rules, dataset, run)
# live once in `contexts`; a row carries only its own values. Binding five constant
# parameters per row, and a secondary index on the random request id, cost the
# request path's core microseconds per prediction (docs/benchmarks.md). The view
# `predictions` shows the rows whole, as PostgreSQL's table does.
MIGRATIONS: list[tuple[int, tuple[str, ...]]] = [
    (
        1,
        (
            """CREATE TABLE contexts (
                id INTEGER PRIMARY KEY,
                service TEXT NOT NULL,
                model_version TEXT NOT NULL,
                rules_version TEXT,
                dataset_version TEXT,
                run_id TEXT
            )""",
            """CREATE TABLE prediction_rows (
                id INTEGER PRIMARY KEY,
                request_id TEXT NOT NULL,
                ts REAL NOT NULL,
                context_id INTEGER NOT NULL REFERENCES contexts (id),
                latency_ms REAL NOT NULL,
                inputs TEXT NOT NULL,
                outputs TEXT NOT NULL,
                status INTEGER NOT NULL
            )""",
            "CREATE INDEX prediction_rows_ts ON prediction_rows (ts)",
            """CREATE VIEW predictions AS
                SELECT p.id, p.request_id, p.ts, c.service, c.model_version, p.latency_ms,
                       p.inputs, p.outputs, c.rules_version, c.dataset_version, c.run_id, p.status
                FROM prediction_rows p JOIN contexts c ON c.id = p.context_id""",
        ),
    ),
    (
        2,
        (
            "ALTER TABLE prediction_rows ADD COLUMN decision TEXT",
            "ALTER TABLE prediction_rows ADD COLUMN shadow TEXT",
            "DROP VIEW predictions",
            """CREATE VIEW predictions AS
                SELECT p.id, p.request_id, p.ts, c.service, c.model_version, p.latency_ms,
                       p.inputs, p.outputs, c.rules_version, c.dataset_version, c.run_id, p.status,
                       p.decision, p.shadow
                FROM prediction_rows p JOIN contexts c ON c.id = p.context_id""",
            _history_table("rules_history"),
            "CREATE INDEX rules_history_service ON rules_history (service, id)",
        ),
    ),
    (
        3,
        (
            _history_table("model_history"),
            "CREATE INDEX model_history_service ON model_history (service, id)",
        ),
    ),
    (
        4,
        (
            # From here on the prediction log is written as segments (store/segments.py);
            # prediction_rows keeps what older versions wrote.
            """CREATE TABLE prediction_segments (
                id INTEGER PRIMARY KEY,
                context_id INTEGER NOT NULL REFERENCES contexts (id),
                ts_min REAL NOT NULL,
                ts_max REAL NOT NULL,
                n INTEGER NOT NULL,
                body TEXT NOT NULL
            )""",
            "CREATE INDEX prediction_segments_ts ON prediction_segments (ts_min)",
            # Request ids of segments, filled in lazily when feedback needs them, so the
            # writer never pays for an index on random ids.
            """CREATE TABLE request_index (
                request_id TEXT NOT NULL, segment_id INTEGER NOT NULL, PRIMARY KEY (request_id, segment_id)
            ) WITHOUT ROWID""",
            "CREATE TABLE request_index_state (last_segment INTEGER NOT NULL)",
            "INSERT INTO request_index_state VALUES (0)",
            "CREATE INDEX prediction_rows_request ON prediction_rows (request_id)",
            "DROP VIEW predictions",
            # json_extract of a nested JSON string gives the document's text back.
            """CREATE VIEW predictions AS
                SELECT p.id, p.request_id, p.ts, c.service, c.model_version, p.latency_ms,
                       p.inputs, p.outputs, c.rules_version, c.dataset_version, c.run_id, p.status,
                       p.decision, p.shadow
                FROM prediction_rows p JOIN contexts c ON c.id = p.context_id
                UNION ALL
                SELECT (s.id << 24) + j.key, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'),
                       c.service, c.model_version, json_extract(j.value, '$[2]'),
                       json_extract(j.value, '$[4]'), json_extract(j.value, '$[5]'),
                       c.rules_version, c.dataset_version, c.run_id, json_extract(j.value, '$[3]'),
                       json_extract(j.value, '$[6]'), json_extract(j.value, '$[7]')
                FROM prediction_segments s JOIN contexts c ON c.id = s.context_id, json_each(s.body) j""",
            *shared_tables(real="REAL", serial="INTEGER PRIMARY KEY"),
            *BACKFILL,
            *hourly_backfill(),
        ),
    ),
    (5, (LOG_DROPS,)),
    # Datasets, tasks and tracked runs (store/run_tables.py).
    (6, run_tables(real="REAL", serial="INTEGER PRIMARY KEY")),
    # Rollups for score and ranked outputs (store/outcome_rollups.py).
    (7, (*outcome_tables("REAL"), rank_backfill("CAST(pred_ts / 86400 AS INTEGER)"))),
    # The model registry (store/registry.py).
    (8, registry_tables(real="REAL", serial="INTEGER PRIMARY KEY")),
    # The service mode that answered (on, shadow, off), shared by a context's rows like its ids.
    (
        9,
        (
            "ALTER TABLE contexts ADD COLUMN mode TEXT",
            "DROP VIEW predictions",
            """CREATE VIEW predictions AS
                SELECT p.id, p.request_id, p.ts, c.service, c.model_version, p.latency_ms,
                       p.inputs, p.outputs, c.rules_version, c.dataset_version, c.run_id, p.status,
                       p.decision, p.shadow, c.mode
                FROM prediction_rows p JOIN contexts c ON c.id = p.context_id
                UNION ALL
                SELECT (s.id << 24) + j.key, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'),
                       c.service, c.model_version, json_extract(j.value, '$[2]'),
                       json_extract(j.value, '$[4]'), json_extract(j.value, '$[5]'),
                       c.rules_version, c.dataset_version, c.run_id, json_extract(j.value, '$[3]'),
                       json_extract(j.value, '$[6]'), json_extract(j.value, '$[7]'), c.mode
                FROM prediction_segments s JOIN contexts c ON c.id = s.context_id, json_each(s.body) j""",
        ),
    ),
    # The model candidate of each service (store/candidates.py); written to apply on top of 9.
    (10, candidate_tables(real="REAL", serial="INTEGER PRIMARY KEY")),
    # PostgreSQL's log partitioned by day (store/partitions.py); SQLite's log stays one table.
    (11, ()),
    # Timeline annotations (store/annotations.py).
    (12, annotation_tables(real="REAL", serial="INTEGER PRIMARY KEY")),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
