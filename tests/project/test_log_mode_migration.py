"""Schema 9: the service mode that answered is a column of the prediction log, on both backends.
A store of schema 8 migrates with its rows kept (their mode unknown: None), and rows logged
after carry their mode, in records and in the `predictions` table or view."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
from store_fixtures import make_record, postgres_at

from shipway.store import open_store
from shipway.store.sqlite_schema import MIGRATIONS

pytest_plugins = ["store_fixtures"]

T0 = 1_700_000_000.0


def _version_8(url: str, tmp_path: Path) -> None:
    """A store exactly as schema 8 left it, holding one prediction."""
    row = ["old-0", T0, 1.0, 200, '{"text":"x"}', '{"label":"a"}', '{"mode":"shadow","answer":"default"}', None]
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at REAL NOT NULL)")
            for version, statements in MIGRATIONS[:8]:
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
            conn.execute("INSERT INTO contexts (service, model_version) VALUES ('svc', 'm-1')")
            conn.execute(
                "INSERT INTO prediction_segments (context_id, ts_min, ts_max, n, body) VALUES (1, ?, ?, 1, ?)",
                (T0, T0, orjson.dumps([row]).decode()),
            )
        return
    with postgres_at(url, 8) as conn:
        conn.execute(
            "INSERT INTO predictions (request_id, ts, service, model_version, latency_ms, inputs, outputs, "
            "status, decision) VALUES (%s, %s, 'svc', 'm-1', 1.0, %s, %s, 200, %s)",
            (row[0], T0, row[4], row[5], row[6]),
        )


def test_a_version_8_log_gains_the_mode_column_with_its_rows_kept(store_url: str, tmp_path: Path) -> None:
    _version_8(store_url, tmp_path)
    with open_store(store_url, tmp_path) as store:
        store.write_predictions([make_record(1, ts=T0 + 1, mode="shadow"), make_record(2, ts=T0 + 2, mode="on")])
        records = list(store.iter_predictions(service="svc"))
        assert [(r.request_id, r.mode) for r in records] == [("old-0", None), ("req-1", "shadow"), ("req-2", "on")]
        # The SQL users write sees it too: PostgreSQL's table, SQLite's view of the same name.
        rows = store._query("SELECT request_id, mode FROM predictions ORDER BY ts", [])
        assert [tuple(r) for r in rows] == [("old-0", None), ("req-1", "shadow"), ("req-2", "on")]


def test_the_mode_survives_the_spool_and_the_export_columns(tmp_path: Path) -> None:
    from shipway.store.spool import decode_line, encode_line

    record = make_record(3, mode="off")
    assert decode_line(encode_line(record)).mode == "off"
