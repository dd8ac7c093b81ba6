"""The store's retention of the prediction log, on both backends: whole days older than the
setting go (PostgreSQL drops partitions, SQLite deletes the entries), archived to Parquet first
when an archive folder is set, and a second pass finds nothing more to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_fixtures import make_record

from shipway.store import open_store
from shipway.store.log_retention import retain_log
from shipway.store.partitions import DAY

pytest_plugins = ["store_fixtures"]

T0 = 1_764_892_800.0  # 2025-12-05 00:00 UTC
NOW = T0 + 4 * DAY + 3600  # 2025-12-09 01:00


def _fill(store: object) -> None:
    # 10 entries a day over five days (12-05 .. 12-09), each day in two batches.
    records = [make_record(day * 10 + i, ts=T0 + day * DAY + i * 3000) for day in range(5) for i in range(10)]
    for at in range(0, len(records), 5):
        store.write_predictions(records[at : at + 5])  # type: ignore[attr-defined]


def test_retention_removes_whole_old_days_and_archives_them_first(store_url: str, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    archive = tmp_path / "archive"
    with open_store(store_url, tmp_path) as store:
        _fill(store)
        assert retain_log(store, 0, NOW).dropped == []  # 0 keeps everything
        # Two days: 12-07 (the day of now - 2 days) and later are kept; 12-05 and 12-06 go.
        result = retain_log(store, 2, NOW, archive_dir=archive)
        assert result.dropped
        assert result.archived_rows == 20
        kept = [r.request_id for r in store.read_predictions()]
        assert kept == [f"req-{i}" for i in range(20, 50)]
        assert store.count_predictions() == 30
        files = sorted(archive.glob("predictions/day=*/model_version=m-1/log-*.parquet"))
        assert [f.parent.parent.name for f in files] == ["day=2025-12-05", "day=2025-12-06"]
        archived = sorted(rid for f in files for rid in pq.read_table(f).column("request_id").to_pylist())
        assert archived == sorted(f"req-{i}" for i in range(20))
        again = retain_log(store, 2, NOW, archive_dir=archive)
        assert again.dropped == [] and again.archived_rows == 0
        # The feedback join still finds what is kept, and not what went.
        assert store.find_prediction("req-25") is not None
        assert store.find_prediction("req-5") is None


def test_sqlite_retention_rewrites_a_segment_that_straddles_the_cutoff(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with open_store(url) as store:
        # One segment from 12-05 23:00 to 12-06 01:00: half of it older than the cutoff.
        store.write_predictions([make_record(i, ts=T0 + DAY - 3600 + i * 1200) for i in range(6)])
        result = retain_log(store, 1, T0 + 2 * DAY + 60)
        assert result.dropped == ["before 2025-12-06"]
        assert [r.request_id for r in store.read_predictions()] == ["req-3", "req-4", "req-5"]
    with sqlite3.connect(tmp_path / "log.db") as conn:
        assert conn.execute("SELECT n, ts_min FROM prediction_segments").fetchall() == [(3, T0 + DAY)]
