"""Feedback, rollups, alert state and segments in both store backends."""

from __future__ import annotations

import math
import random
import sqlite3
import threading
from pathlib import Path

import orjson
import pytest
from store_fixtures import make_record

from shipway.errors import InputError, StoreError
from shipway.store import PredictionRecord, open_store
from shipway.store import series as sql
from shipway.store.outcomes import describe_fields, parse_feedback
from shipway.store.records import columns_of, entry_of, record_of
from shipway.store.rollups import GROWTH, bucket_bounds, latency_bucket, quantile, rollup
from shipway.store.sqlite_schema import MIGRATIONS

pytest_plugins = ["store_fixtures"]

DESCRIBE = describe_fields()
T0 = 1_700_000_040.0  # a minute boundary


def _record(
    i: int, label: str, *, ts: float | None = None, alternatives: tuple[str, ...] = (), **fields: object
) -> PredictionRecord:
    outputs = {"label": label, "score": 0.6, "alternatives": [{"label": a, "score": 0.1} for a in alternatives]}
    return make_record(i, ts=T0 + i if ts is None else ts, outputs=orjson.dumps(outputs), **fields)


def _feedback(items: list[dict[str, object]]) -> list:  # type: ignore[type-arg]
    return parse_feedback(items)


def test_feedback_joins_reports_duplicates_unknown_and_late(store_url: str) -> None:
    with open_store(store_url) as store:
        store.write_predictions([_record(i, "a" if i % 2 else "b", alternatives=("c", "a")) for i in range(10)])
        outcome = store.write_feedback(
            _feedback(
                [
                    {"request_id": "req-1", "label": "a", "ts": T0 + 60},  # right
                    {"request_id": "req-2", "label": "a", "ts": T0 + 60},  # wrong
                    {"request_id": "req-2", "label": "b", "ts": T0 + 60},  # a duplicate in the batch: newest wins
                    {"request_id": "req-3", "name": "clicked", "value": True, "ts": T0 + 10 * 86400},  # late
                    {"request_id": "nobody", "label": "a", "ts": T0 + 60},  # unknown
                ]
            ),
            DESCRIBE,
            late_after_s=86400,
        )
        assert outcome.accepted == 4
        assert outcome.duplicates == ["req-2"]
        assert outcome.unknown == ["nobody"]
        assert outcome.late == ["req-3"]
        again = store.write_feedback(_feedback([{"request_id": "req-1", "label": "b", "ts": T0 + 60}]), DESCRIBE)
        assert again.duplicates == ["req-1"] and again.unknown == []
        rows = dict(
            ((rid, name), rest)
            for rid, name, *rest in store._query(
                "SELECT request_id, name, actual, number, predicted, rank, pred_ts FROM feedback", []
            )
        )
        assert rows[("req-1", "label")][:4] == ["b", None, "a", 0]  # 0: not listed
        assert rows[("req-2", "label")][:4] == ["b", None, "b", 1]
        assert rows[("req-3", "clicked")][:4] == [None, 1.0, "a", None]
        assert rows[("nobody", "label")][4] is None  # pending


def test_feedback_with_nul_in_ids_names_and_labels_is_stored_and_joined(store_url: str) -> None:
    # PostgreSQL's text cannot hold U+0000: it answered 500 store_error where SQLite stored it.
    with open_store(store_url) as store:
        store.write_predictions([_record(0, "card\x00lost", request_id="req\x00-0")])
        outcome = store.write_feedback(
            _feedback([{"request_id": "req\x00-0", "name": "label\x00", "value": "card\x00lost", "ts": T0 + 60}]),
            DESCRIBE,
        )
        assert outcome.accepted == 1 and outcome.unknown == []
        rows = store._query("SELECT request_id, name, value, actual, predicted, rank FROM feedback", [])
        assert [tuple(r) for r in rows] == [
            # Any outcome with a text value is ranked against the prediction (docs/feedback.md).
            ("req\x00-0", "label\x00", '"card\\u0000lost"', "card\x00lost", "card\x00lost", 1)
        ]
        store.write_feedback(_feedback([{"request_id": "req\x00-0", "label": "card\x00lost", "ts": T0 + 60}]), DESCRIBE)
        (row,) = store._query("SELECT actual, predicted, rank FROM feedback WHERE name = 'label'", [])
        assert tuple(row) == ("card\x00lost", "card\x00lost", 1)


def test_a_reused_request_id_logs_both_and_feedback_joins_the_newest(store_url: str) -> None:
    # The rule of docs/feedback.md ("When a client reuses a request id").
    with open_store(store_url) as store:
        store.write_predictions(
            [_record(0, "a", request_id="same", ts=T0), _record(1, "b", request_id="same", ts=T0 + 5)]
        )
        assert store.count_predictions() == 2
        outcome = store.write_feedback(_feedback([{"request_id": "same", "label": "b", "ts": T0 + 60}]), DESCRIBE)
        assert outcome.accepted == 1 and outcome.unknown == [] and outcome.duplicates == []
        (row,) = store._query("SELECT pred_ts, predicted, rank FROM feedback", [])
        assert tuple(row) == (T0 + 5, "b", 1)


def test_unknown_feedback_joins_when_its_prediction_is_logged_later(store_url: str) -> None:
    with open_store(store_url) as store:
        first = store.write_feedback(_feedback([{"request_id": "req-7", "label": "a"}]), DESCRIBE)
        assert first.unknown == ["req-7"]
        store.write_predictions([_record(7, "a")])
        assert store.resolve_feedback(DESCRIBE) == 1
        assert store.resolve_feedback(DESCRIBE) == 0
        rows = sql.feedback_series(store, "svc", T0, T0 + 3600, 3600, None)
        assert [(r[2], int(r[3]), int(r[4])) for r in rows] == [("label", 1, 1)]


def test_rollups_count_every_record_once_even_on_replay(store_url: str) -> None:
    records = [
        _record(i, "a", latency_ms=float(1 + i % 5), decision=orjson.dumps({"queue": "q" + str(i % 2)}))
        for i in range(120)
    ]
    with open_store(store_url) as store:
        store.write_predictions(records[:80])
        store.write_predictions(records[40:], replay=True)  # 40 already stored
        assert store.count_predictions("svc") == 120
        rows = sql.prediction_series(store, "svc", T0, T0 + 7200, 3600, None)
        assert sum(int(r[4]) for r in rows) == 120
        assert math.isclose(sum(float(r[5]) for r in rows), sum(r.latency_ms for r in records))
        by_decision: dict[str, int] = {}
        for r in rows:
            by_decision[r[3]] = by_decision.get(r[3], 0) + int(r[4])
        assert by_decision == {'{"queue":"q0"}': 60, '{"queue":"q1"}': 60}
        histogram = [(int(b), int(n)) for _, _, b, n in sql.latency_series(store, "svc", T0, T0 + 7200, 60 * 60, None)]
        assert sum(n for _, n in histogram) == 120


def test_latency_quantiles_are_within_the_stated_bound() -> None:
    values = [0.05 * 1.37**k for k in range(60)]
    histogram: dict[int, int] = {}
    for v in values:
        histogram[latency_bucket(v)] = histogram.get(latency_bucket(v), 0) + 1
        low, high = bucket_bounds(latency_bucket(v))
        assert low <= v < high * (1 + 1e-12)
    for q in (0.5, 0.9, 0.99):
        exact = sorted(values)[math.ceil(q * len(values)) - 1]
        estimate = quantile(list(histogram.items()), q)
        assert estimate is not None and abs(estimate / exact - 1) <= GROWTH - 1


def test_alert_transitions_are_deduplicated_across_threads(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.alert_transition("svc", "errors", False, T0, {}) is False  # nothing to recover from
        results: list[bool] = []

        def fire() -> None:
            with open_store(store_url) as own:
                results.append(own.alert_transition("svc", "errors", True, T0, {"value": 0.2}))

        threads = [threading.Thread(target=fire) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False] * 5 + [True]
        assert store.alert_states("svc") == {"errors": True}
        assert store.alert_transition("svc", "errors", False, T0 + 60, {"value": 0.0}) is True
        assert store.alert_transition("svc", "errors", False, T0 + 120, {}) is False
        events = store.alert_events("svc")
        assert [(e.key, e.firing) for e in events] == [("errors", False), ("errors", True)]
        assert events[1].detail == {"value": 0.2}


def test_series_refuse_a_bad_step_or_group(store_url: str) -> None:
    with open_store(store_url) as store:
        with pytest.raises(StoreError, match="whole number of minutes"):
            sql.prediction_series(store, "svc", T0, T0 + 60, 90, None)
        with pytest.raises(StoreError, match="by must be one of"):
            sql.prediction_series(store, "svc", T0, T0 + 60, 60, "colour")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("nope", "must be a JSON object"),
        ({"label": "a"}, "request_id"),
        ({"request_id": "r"}, "no outcome"),
        ({"request_id": "r", "label": {"x": 1}}, "string, number or boolean"),
        ({"request_id": "r", "label": "a", "value": 1}, "not both"),
        ({"request_id": "r", "label": "a", "colour": 1}, "unknown keys"),
        ({"request_id": "r", "label": "a", "ts": "yesterday"}, "ISO 8601"),
    ],
)
def test_bad_feedback_is_refused_with_the_fix(body: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_feedback(body)


def test_segments_merge_overlapping_workers_in_ts_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_store(url) as store:
        # Two "workers" whose flushes interleave in time.
        store.write_predictions([_record(i, "a", ts=T0 + i * 2) for i in range(50)])
        store.write_predictions([_record(100 + i, "a", ts=T0 + i * 2 + 1) for i in range(50)])
        seen = [r.ts for r in store.iter_predictions(service="svc")]
        assert seen == sorted(seen) and len(seen) == 100
        window = [r.ts for r in store.iter_predictions(service="svc", since=T0 + 10, until=T0 + 20)]
        assert window == [T0 + k for k in range(10, 20)]
        # The SQL view shows segment rows whole, as older versions' rows were.
        with sqlite3.connect(tmp_path / "s.db") as conn:
            row = conn.execute(
                "SELECT inputs, outputs, status FROM predictions WHERE request_id = 'req-105'"
            ).fetchone()
        assert orjson.loads(row[0]) == {"text": "input 105", "n": 105} and row[2] == 200


def test_a_version_3_store_is_migrated_with_its_rows_kept_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at REAL NOT NULL)")
        for version, statements in MIGRATIONS[:3]:
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
        conn.execute("INSERT INTO contexts (service, model_version) VALUES ('svc', 'm-1')")
        conn.executemany(
            "INSERT INTO prediction_rows (request_id, ts, context_id, latency_ms, inputs, outputs, status) "
            "VALUES (?, ?, 1, ?, '{}', '{\"label\": \"a\"}', 200)",
            [(f"old-{i}", T0 + i, 2.0) for i in range(30)],
        )
    with open_store(f"sqlite:///{path}") as store:
        store.write_predictions([_record(i, "a", ts=T0 + 30 + i) for i in range(5)])
        assert store.count_predictions("svc") == 35
        ids = [r.request_id for r in store.iter_predictions(service="svc")]
        assert ids[:30] == [f"old-{i}" for i in range(30)] and len(ids) == 35
        rows = sql.prediction_series(store, "svc", T0, T0 + 3600, 3600, None)
        assert sum(int(r[4]) for r in rows) == 35
        outcome = store.write_feedback(_feedback([{"request_id": "old-3", "label": "a"}]), DESCRIBE)
        assert outcome.unknown == []


def test_rollup_folds_entries_as_one_entry_at_a_time_would() -> None:
    """The column-wise fold (fast paths for one minute, one status, one decision) against a
    plain per-entry count, on entries that mix contexts, minutes, statuses and decisions."""
    rng = random.Random(7)
    contexts = [
        ("svc", "m1", None, None, None, "on"),
        ("svc", "m1", "r1", "d1", None, "on"),
        ("other", "m2", "r2", None, "run", "on"),
    ]
    entries = []
    for i in range(3000):
        if i < 1000:  # one context, minute, status and decision: every fast path
            context, ts, status, decision = contexts[0], 1_700_000_000.0 + i * 0.01, 200, None
        else:
            context, ts = rng.choice(contexts), 1_700_000_000.0 + rng.uniform(0, 300)
            status = 200 if rng.random() < 0.8 else rng.choice([500, 504])
            decision = rng.choice([None, '{"queue":"auto"}', '{"queue":"review"}'])
        entries.append((context, f"r{i}", ts, rng.lognormvariate(1, 1), status, "{}", "{}", decision, None))

    for part in (entries[:1000], entries[1000:], entries):
        want_counts: dict[tuple[object, ...], list[float]] = {}
        want_latency: dict[tuple[object, ...], int] = {}
        for (service, model, rules, _, _, _), _, ts, ms, status, _, _, decision, _ in part:
            minute = int(ts // 60)
            row = want_counts.setdefault((minute, service, model, rules or "", status, decision or ""), [0, 0.0])
            row[0] += 1
            row[1] += ms
            key = (minute, service, model, rules or "", latency_bucket(ms))
            want_latency[key] = want_latency.get(key, 0) + 1
        counts, latency = rollup(columns_of(part))
        assert {r[:6]: r[6] for r in counts} == {k: v[0] for k, v in want_counts.items()}
        for r in counts:
            assert r[7] == pytest.approx(want_counts[r[:6]][1], rel=1e-9)
        assert {r[:5]: r[5] for r in latency} == want_latency


def test_the_latency_rollup_counts_latencies_on_bucket_bounds_infinite_and_nan() -> None:
    # The histogram is counted from the sorted latencies, a bisect per bucket; a NaN has no
    # place in a sort and takes the per-entry path. Both must agree with latency_bucket.
    rng = random.Random(5)
    bounds = [bucket_bounds(b)[1] for b in range(0, 300, 7)]
    for extra in ([], [math.nan], [math.inf, -math.inf]):
        latencies = [*bounds, *(b * (1 + 1e-12) for b in bounds), 0.0, 1e-9, math.inf, *extra]
        latencies += [rng.lognormvariate(0, 4) for _ in range(500)]
        rng.shuffle(latencies)
        context = ("svc", "m1", None, None, None, "on")
        entries = [
            (context, f"r{i}", 1_700_000_000.0, ms, 200, "{}", "{}", None, None) for i, ms in enumerate(latencies)
        ]
        _, latency = rollup(columns_of(entries))
        want: dict[int, int] = {}
        for ms in latencies:
            want[latency_bucket(ms)] = want.get(latency_bucket(ms), 0) + 1
        assert {r[4]: r[5] for r in latency} == want


def test_a_latency_lands_in_the_bucket_whose_bounds_hold_it() -> None:
    rng = random.Random(3)
    for ms in [0.0, 0.0005, 0.001, 0.0011, 1.0, 250.0, 9e9, *(rng.lognormvariate(0, 3) for _ in range(2000))]:
        low, high = bucket_bounds(latency_bucket(ms))
        assert low < ms <= high or (ms <= 0.001 and latency_bucket(ms) == 0) or ms > 1e8


def test_log_entries_give_back_the_records_they_were_made_from() -> None:
    record = make_record(1, inputs=b'{"text": "caf\xc3\xa9"}', decision=b'{"queue":"auto"}')
    assert record_of(entry_of(record)) == record
    # Bytes that are not UTF-8 survive the trip (for the store to refuse with a clear error).
    bad = make_record(2, inputs=b'{"text": "\xff"}')
    assert record_of(entry_of(bad, "surrogateescape")) == bad
    with pytest.raises(UnicodeDecodeError):
        entry_of(bad)


def test_a_version_4_store_gets_the_ranks_of_its_joined_feedback_in_step_7(tmp_path: Path) -> None:
    from shipway.store.outcome_rollups import rank_rows

    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at REAL NOT NULL)")
        for version, statements in [m for m in MIGRATIONS if m[0] <= 4]:
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
        conn.executemany(
            "INSERT INTO feedback (request_id, name, value, ts, received, service, pred_ts, rank) "
            "VALUES (?, 'label', '\"a\"', ?, ?, 'svc', ?, ?)",
            [(f"r{i}", T0, T0, T0 + i, 1 + i % 3) for i in range(9)],
        )
    with open_store(f"sqlite:///{path}") as store:
        assert rank_rows(store, "svc", T0 - 86400 * 3, T0 + 86400 * 3) == [(1, 3), (2, 3), (3, 3)]
