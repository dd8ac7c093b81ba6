"""Schema 11 on PostgreSQL: the prediction log partitioned by day. A table of schema 10 with rows
migrates with every row and id kept; the writer makes each day's partition and the next day's
ahead; feedback joins, request-id lookups, rollups, the dashboard's reads and the export's COPY
read all work across the old table and the new partitions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from store_fixtures import make_record, postgres_at

from shipway.store import open_store
from shipway.store.outcomes import describe_fields, parse_feedback
from shipway.store.partitions import DAY, days_of, partition_name

pytest_plugins = ["store_fixtures"]

T0 = 1_764_892_800.0  # 2025-12-05 00:00 UTC


def _version_10(url: str, rows: int) -> None:
    """A store exactly as schema 10 left it, holding `rows` predictions over three days."""
    with postgres_at(url, 10) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO predictions (request_id, ts, service, model_version, latency_ms, inputs, outputs, "
            "status, mode) VALUES (%s, %s, 'svc', 'm-1', 2.0, %s, %s, 200, 'on')",
            [
                (f"old-{i}", T0 + i * (3 * DAY / rows), orjson.dumps({"n": i}).decode(), '{"label": "a"}')
                for i in range(rows)
            ],
        )


def _relkind(store: Any, name: str) -> str:
    return str(store._query("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [name])[0][0])


def test_a_version_10_log_is_partitioned_with_its_rows_and_ids_kept(postgres_url: str, tmp_path: Path) -> None:
    _version_10(postgres_url, 300)
    with open_store(postgres_url) as store:
        assert _relkind(store, "predictions") == "p"  # partitioned
        names = [p.name for p in store.expired_log(float("inf"))]
        assert names == ["predictions_legacy"]  # the old table, attached whole: no row copied
        old_ids = [int(r[0]) for r in store._query("SELECT id FROM predictions ORDER BY id", [])]
        assert old_ids == list(range(1, 301))
        # New rows, today and on a later day: partitions of their own, ids after the old ones.
        later = (int(time.time() // DAY) + 30) * DAY + 3600.0  # after the old table's bound, today's end
        store.write_predictions([make_record(1, ts=later), make_record(2, ts=later + 1)])
        names = [p.name for p in store.expired_log(float("inf"))]
        day = int(later // DAY)
        assert names == ["predictions_legacy", partition_name(day), partition_name(day + 1)]
        new_ids = [int(r[0]) for r in store._query("SELECT id FROM predictions WHERE ts >= %s ORDER BY id", [later])]
        assert new_ids == [301, 302]
        assert store.count_predictions() == 302

        # Request-id lookups in the old table and in a new partition.
        old = store.find_prediction("old-7")
        assert old is not None and orjson.loads(old.inputs) == {"n": 7}
        assert store.find_prediction("req-2") is not None
        # Feedback joins to both.
        feedback = parse_feedback([{"request_id": "old-7", "label": "a"}, {"request_id": "req-1", "label": "a"}])
        outcome = store.write_feedback(feedback, describe_fields())
        assert outcome.accepted == 2 and outcome.unknown == []
        # The rollups count the new rows.
        counted = store._query("SELECT SUM(n) FROM prediction_counts WHERE minute >= %s", [int(later // 60)])
        assert int(counted[0][0]) == 2
        # The dashboard's reads: a window in ts order across partitions.
        window = store.read_predictions(service="svc", since=T0 + 2 * DAY, until=later + 10)
        assert [r.request_id for r in window][-2:] == ["req-1", "req-2"]
        assert window[0].ts >= T0 + 2 * DAY
        # The export's COPY read, in id order, from its position.
        position = store.log_position()
        assert position == 302
        got = [rid for _, g in store.iter_log(295, position) for rid in g.request_ids]
        assert got == [f"old-{i}" for i in range(295, 300)] + ["req-1", "req-2"]


def test_a_fresh_store_starts_with_no_partition_and_the_writer_makes_them(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        assert store.expired_log(float("inf")) == []
        day = int(T0 // DAY)
        # A batch over two days: both days' partitions and the next day's, ahead of it.
        store.write_predictions([make_record(1, ts=T0 + 10), make_record(2, ts=T0 + DAY + 10)])
        assert [p.name for p in store.expired_log(float("inf"))] == [partition_name(d) for d in (day, day + 1, day + 2)]
        assert [r.request_id for r in store.read_predictions()] == ["req-1", "req-2"]
        # Another process (its own cache) writing the same day finds the partition made.
        with open_store(postgres_url) as other:
            other.write_predictions([make_record(3, ts=T0 + 20)])
        assert len(store.expired_log(float("inf"))) == 3
        # A replay of what is already stored is skipped across partitions, as before.
        store.write_predictions([make_record(1, ts=T0 + 10), make_record(4, ts=T0 + 30)], replay=True)
        assert store.count_predictions() == 4


def test_days_of_a_batch_span_its_earliest_to_its_latest() -> None:
    assert days_of([T0 + 5, T0 + 2 * DAY + 1, T0 + 10]) == {int(T0 // DAY), int(T0 // DAY) + 1, int(T0 // DAY) + 2}
    assert days_of([]) == set()
    assert days_of([float("nan")]) == set()
    assert partition_name(int(T0 // DAY)) == "predictions_20251205"
