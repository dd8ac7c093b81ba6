"""The store backends: SQLite and PostgreSQL pass the same tests."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import uuid
from pathlib import Path

import orjson
import pytest
from store_fixtures import (
    PG_ENV,
    free_port,
    make_record,
    with_query,
    write_from_process,
)

import shipway.store
from shipway.errors import StoreError, StoreUnavailable
from shipway.store import PredictionRecord, open_store, store_from_url
from shipway.store.records import columns_of_records

# The store_url and postgres_url fixtures (conftest.py belongs to the whole suite).
pytest_plugins = ["store_fixtures"]


def _same(a: PredictionRecord, b: PredictionRecord) -> bool:
    # PostgreSQL's jsonb normalises key order and spacing, so documents compare parsed.
    return (
        orjson.loads(a.inputs) == orjson.loads(b.inputs)
        and orjson.loads(a.outputs) == orjson.loads(b.outputs)
        and (a.request_id, a.ts, a.service, a.model_version, a.latency_ms)
        == (b.request_id, b.ts, b.service, b.model_version, b.latency_ms)
        and (a.rules_version, a.dataset_version, a.run_id, a.status)
        == (b.rules_version, b.dataset_version, b.run_id, b.status)
    )


def test_exported_names() -> None:
    assert sorted(shipway.store.__all__) == [
        "PredictionLog",
        "PredictionRecord",
        "RulesEvent",
        "Store",
        "open_store",
        "store_from_url",
    ]


def test_round_trip_keeps_every_field(store_url: str) -> None:
    full = make_record(
        1,
        ts=1_700_000_000.123456,
        rules_version="rules-7",
        dataset_version="ds-3",
        run_id="run-42",
        status=207,
        inputs=b'{"text": "caf\xc3\xa9 \\n \\"quoted\\"", "nested": {"a": [1, 2.5, null, true]}}',
        outputs=b'[{"label": "x"}, 0.25]',
    )
    bare = make_record(2)
    with open_store(store_url) as store:
        store.write_predictions([full, bare])
        got = store.read_predictions()
    assert len(got) == 2
    assert _same(got[0], full) and _same(got[1], bare)
    assert isinstance(got[0].inputs, bytes) and isinstance(got[0].outputs, bytes)
    assert got[1].rules_version is None and got[1].status == 200


def test_read_orders_by_ts_and_filters(store_url: str) -> None:
    records = [make_record(i, service="a" if i % 2 else "b", ts=100.0 + i) for i in range(10)]
    with open_store(store_url) as store:
        store.write_predictions(list(reversed(records)))
        assert [r.ts for r in store.read_predictions()] == [100.0 + i for i in range(10)]
        assert [r.request_id for r in store.read_predictions(service="a")] == [f"req-{i}" for i in (1, 3, 5, 7, 9)]
        # since is inclusive, until exclusive
        assert [r.ts for r in store.read_predictions(since=103.0, until=106.0)] == [103.0, 104.0, 105.0]
        assert [r.ts for r in store.read_predictions(service="b", since=104.0)] == [104.0, 106.0, 108.0]
        assert [r.ts for r in store.read_predictions(limit=3)] == [100.0, 101.0, 102.0]
        assert store.read_predictions(limit=0) == []
        assert store.read_predictions(service="nobody") == []
        assert store.count_predictions() == 10
        assert store.count_predictions(service="a") == 5
        assert store.count_predictions(service="nobody") == 0
        with pytest.raises(StoreError, match="limit must be a non-negative integer"):
            store.read_predictions(limit=-1)


def test_replaying_a_record_is_ignored(store_url: str) -> None:
    # What makes replaying a spool after an ambiguous failure safe.
    records = [make_record(i) for i in range(5)]
    with open_store(store_url) as store:
        store.write_predictions(records)
        store.write_predictions([*records[2:], make_record(5)], replay=True)
        store.write_predictions([], replay=True)
        assert store.count_predictions() == 6
        assert sorted(r.request_id for r in store.read_predictions()) == sorted(
            r.request_id for r in [*records, make_record(5)]
        )


def test_open_is_idempotent_and_data_persists(store_url: str) -> None:
    store = store_from_url(store_url)
    store.open()
    store.open()
    store.write_predictions([make_record(1)])
    store.close()
    store.close()
    with open_store(store_url) as again:
        again.open()
        assert again.count_predictions() == 1


def test_using_a_store_before_open_says_so(store_url: str) -> None:
    store = store_from_url(store_url)
    with pytest.raises(StoreError, match=r"not open; call open\(\) first"):
        store.write_predictions([make_record(1)])


def test_a_newer_schema_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    _execute(store_url, "INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(StoreError, match=r"schema version 99.*upgrade shipway") as info:
        open_store(store_url)
    assert not isinstance(info.value, StoreUnavailable)


def _execute(url: str, sql: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(sql)
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)


# -- URLs --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://db/x", "shipway.db", "", "http://example.com"])
def test_unknown_scheme_names_url_schemes_and_example(url: str) -> None:
    with pytest.raises(StoreError) as info:
        store_from_url(url)
    message = str(info.value)
    assert repr(url) in message
    assert "sqlite:///" in message and "postgresql://" in message
    assert "for example" in message


def test_bad_sqlite_url() -> None:
    with pytest.raises(StoreError, match=r"bad SQLite store URL 'sqlite://x.db'.*for example sqlite:///"):
        store_from_url("sqlite://x.db")


def test_relative_sqlite_path_resolves_against_base_dir(tmp_path: Path) -> None:
    with open_store("sqlite:///data/deep/log.db", base_dir=tmp_path) as store:
        store.write_predictions([make_record(1)])
    assert (tmp_path / "data" / "deep" / "log.db").is_file()


def test_a_new_sqlite_file_has_16k_pages_and_an_older_one_keeps_its_own(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    with open_store(f"sqlite:///{fresh}") as store:
        store.write_predictions([make_record(1)])
    older = tmp_path / "older.db"
    with sqlite3.connect(older) as conn:  # a file made before 16 KiB pages
        conn.execute("PRAGMA page_size=4096")
        conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    with open_store(f"sqlite:///{older}") as store:
        store.write_predictions([make_record(i) for i in range(3)])
        assert [r.request_id for r in store.read_predictions()] == [make_record(i).request_id for i in range(3)]
    sizes = {}
    for path in (fresh, older):
        with sqlite3.connect(path) as conn:
            sizes[path.name] = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
    assert sizes == {"fresh.db": 16384, "older.db": 4096}


def test_sqlite_path_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    url = f"sqlite:///{tmp_path / 'blocker' / 'log.db'}"
    with pytest.raises(StoreUnavailable, match="blocker"):
        open_store(url)


def test_postgres_url_with_a_bad_port_is_a_store_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match=r"bad PostgreSQL store URL .*'abc'.*for example postgresql://") as info:
        open_store("postgresql://user:hunter2@127.0.0.1:abc/db")
    assert not isinstance(info.value, StoreUnavailable)
    assert "hunter2" not in str(info.value)


def test_postgres_url_with_a_bad_option_is_a_store_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match="bad PostgreSQL store URL") as info:
        open_store("postgres://127.0.0.1/db?no_such_option=1")
    assert not isinstance(info.value, StoreUnavailable)


def test_postgres_closed_port_is_unavailable_and_hides_the_password() -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://user:hunter2@127.0.0.1:{free_port()}/db"
    with pytest.raises(StoreUnavailable, match="cannot connect to the PostgreSQL store") as info:
        open_store(url)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


# -- PostgreSQL specifics ----------------------------------------------------------


def test_postgres_reconnects_on_the_call_after_a_lost_connection(postgres_url: str) -> None:
    import psycopg

    app = f"shipway_test_{uuid.uuid4().hex[:8]}"
    url = with_query(postgres_url, application_name=app)
    with open_store(url) as store:
        store.write_predictions([make_record(1)])
        with psycopg.connect(os.environ[PG_ENV], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (app,))
        with pytest.raises(StoreUnavailable, match="next call will reconnect"):
            store.write_predictions([make_record(2)])
        store.write_predictions([make_record(2)])
        assert store.count_predictions() == 2


# Documents and ids PostgreSQL refuses as they are (U+0000 in text, jsonb's \u0000 and lone
# surrogates) and what could be mistaken for its wrapper: SQLite stores them as they are, and
# both backends give back exactly what was written.
AWKWARD_DOCUMENTS = [
    b'{"text":"a\\u0000b"}',
    b'{"text":"\\ud800 alone"}',
    b'{"text":"a pair \\ud83d\\ude00"}',
    b'{"shipway:json":"looks wrapped"}',
    b'{"text":"a backslash, then u0000: \\\\u0000"}',
    '{"text": "\uffff0 the escape itself"}'.encode(),  # spaced as jsonb gives it back
]


def test_what_postgres_refuses_round_trips_exactly_on_both_backends(store_url: str) -> None:
    records = [
        make_record(
            i,
            request_id=f"req-{i}\x00nul",
            model_version="m\x00\uffff1",
            rules_version="r\x00",
            inputs=doc,
            outputs=doc,
            decision=doc,
            shadow=doc,
        )
        for i, doc in enumerate(AWKWARD_DOCUMENTS)
    ]
    with open_store(store_url) as store:
        store.write_predictions(records)
        back = store.read_predictions()
        assert [(r.inputs, r.outputs, r.decision, r.shadow) for r in back] == [(d, d, d, d) for d in AWKWARD_DOCUMENTS]
        assert [r.request_id for r in back] == [r.request_id for r in records]
        assert {(r.model_version, r.rules_version) for r in back} == {("m\x00\uffff1", "r\x00")}
        assert store.find_prediction("req-0\x00nul") is not None
        options = {"mode": "canary", "canary": 0.1, "canary_key": "field\x00"}
        store.record_rules("svc\x00", "v\x00", "rules:\x00", actor="me\x00", options=options)
        (event,) = store.rules_history("svc\x00")
        assert (event.version, event.actor, event.source, event.options) == ("v\x00", "me\x00", "rules:\x00", options)


def test_postgres_refuses_invalid_json_as_a_store_error(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        with pytest.raises(StoreError) as info:
            store.write_predictions([make_record(1), make_record(2, inputs=b"{not json")])
        assert not isinstance(info.value, StoreUnavailable)
        assert store.count_predictions() == 0  # one transaction: none of the batch


# -- several processes, one SQLite file ----------------------------------------------


def test_sqlite_several_processes_write_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    workers, count = 4, 400
    procs = [ctx.Process(target=write_from_process, args=(url, w, count, 20, go)) for w in range(workers)]
    for p in procs:
        p.start()
    go.set()  # all open the fresh file at once, schema creation included
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open_store(url) as store:
        ids = {r.request_id for r in store.read_predictions()}
        assert store.count_predictions() == workers * count
    assert ids == {f"req-{w * 1_000_000 + i}" for w in range(workers) for i in range(count)}


def test_decisions_round_trip(store_url: str) -> None:
    record = make_record(1)
    record.decision = b'{"queue": "urgent", "fired": ["urgent-cards"]}'
    record.shadow = b'{"queue": "general"}'
    with open_store(store_url) as store:
        store.write_predictions([record, make_record(2)])
        first, second = store.read_predictions()
    assert orjson.loads(first.decision or b"") == {"queue": "urgent", "fired": ["urgent-cards"]}
    assert orjson.loads(first.shadow or b"") == {"queue": "general"}
    assert second.decision is None and second.shadow is None


def test_rules_history(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.active_rules("svc") is None
        v1 = store.record_rules("svc", "v1", "rules: one", actor="ana", options={"mode": "on"})
        store.record_rules("other", "x", "rules: other")
        v2 = store.record_rules("svc", "v2", "rules: two", options={"mode": "shadow", "canary": 0.1})
        assert v2.id > v1.id
        active = store.active_rules("svc")
        assert active is not None and (active.version, active.source, active.options) == (
            "v2",
            "rules: two",
            {"mode": "shadow", "canary": 0.1},
        )
        back = store.rules_version("svc", "v1")
        assert back is not None and back.source == "rules: one" and back.actor == "ana"
        store.record_rules("svc", back.version, back.source, action="rollback", actor="bo")
        history = store.rules_history("svc")
        assert [(e.version, e.action) for e in history] == [("v1", "rollback"), ("v2", "apply"), ("v1", "apply")]
        assert store.rules_history("svc", limit=1)[0].actor == "bo"
        with pytest.raises(StoreError, match="must be 'apply' or 'rollback'"):
            store.record_rules("svc", "v3", "x", action="delete")


def test_iter_predictions_streams_in_order(store_url: str) -> None:
    records = [make_record(i, ts=1000.0 + i) for i in range(25)]
    with open_store(store_url) as store:
        store.write_predictions(records[::-1])
        streamed = list(store.iter_predictions(chunk=4))
        assert [r.request_id for r in streamed] == [r.request_id for r in records]
        window = [r.request_id for r in store.iter_predictions(since=1005.0, until=1010.0, chunk=2)]
        assert window == [f"req-{i}" for i in range(5, 10)]
        assert list(store.iter_predictions(service="nobody")) == []


def test_model_history(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.model_history("svc") == []
        store.record_model("svc", "m1", "/models/m1", actor="ana")
        store.record_model("other", "x", "/models/x")
        store.record_model("svc", "m2", "/models/m2")
        history = store.model_history("svc")
        assert [(e.version, e.source, e.action) for e in history] == [
            ("m2", "/models/m2", "deploy"),
            ("m1", "/models/m1", "deploy"),
        ]
        assert history[1].actor == "ana"
        assert store.rules_history("svc") == []  # separate histories


def test_large_batches_keep_every_record_and_field(store_url: str) -> None:
    # more than one multi-row statement, and a remainder
    records = [make_record(i, ts=2000.0 + i, rules_version=f"r{i % 3}") for i in range(137)]
    for i, r in enumerate(records):
        r.decision = b'{"queue": "q%d"}' % i
    with open_store(store_url) as store:
        store.write_predictions(records)
        back = store.read_predictions()
    assert [r.request_id for r in back] == [r.request_id for r in records]
    assert [r.rules_version for r in back] == [r.rules_version for r in records]
    assert [orjson.loads(r.decision or b"")["queue"] for r in back] == [f"q{i}" for i in range(137)]
    assert [orjson.loads(r.inputs) for r in back] == [orjson.loads(r.inputs) for r in records]


def test_write_columns_pauses_once_the_batch_is_encoded_and_before_its_transaction(store_url: str) -> None:
    # The prediction log's writer rests there (store/pacing.py): nothing of the batch may be
    # stored yet, and the store's lock must not be held (another call goes through meanwhile).
    batch = columns_of_records([make_record(i) for i in range(5)])
    seen: list[int] = []
    with open_store(store_url) as store, open_store(store_url) as other:

        def pause() -> None:
            seen.append(other.count_predictions())
            store.write_predictions([make_record(99)])  # the same handle: its lock is free

        store.write_columns(batch, pause=pause)
        assert seen == [0]
        assert sorted(r.request_id for r in store.read_predictions()) == sorted(f"req-{i}" for i in (0, 1, 2, 3, 4, 99))
