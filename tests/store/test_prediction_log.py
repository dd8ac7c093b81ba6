"""The prediction log: batched, sampled, redacted, and never losing a record to an outage."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from store_fixtures import (
    PG_ENV,
    TcpProxy,
    free_port,
    make_record,
    pg_target,
    stored_ids,
    wait_for,
    with_port,
    with_query,
)

from shipway.errors import ConfigError, StoreError
from shipway.store import PredictionLog, open_store
from shipway.store.log_buffer import LogBuffer, decoded
from shipway.store.pacing import SLICE_ENTRIES
from shipway.store.records import entry_of
from shipway.store.refusals import refused_lines
from shipway.store.spool import decode_line

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"

# The store_url and postgres_url fixtures (conftest.py belongs to the whole suite).
pytest_plugins = ["store_fixtures"]


# Every test runs with each writer: the thread in this process, and the writer process.
_writer = "thread"


@pytest.fixture(autouse=True, params=["thread", "process"])
def writer(request: pytest.FixtureRequest) -> Iterator[str]:
    global _writer
    _writer = request.param
    yield request.param
    _writer = "thread"


def _log(url: str, tmp_path: Path, **kwargs: Any) -> PredictionLog:
    kwargs.setdefault("flush_interval_s", 0.05)
    kwargs.setdefault("retry_interval_s", 0.1)
    kwargs.setdefault("writer", _writer)
    return PredictionLog(url, spool_dir=tmp_path / "spool", **kwargs)


def _spool_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "spool").glob("predictions-*.jsonl"))


def _count(url: str) -> int:
    with open_store(url) as store:
        return store.count_predictions()


def test_records_appear_after_flush(store_url: str, tmp_path: Path) -> None:
    log = _log(store_url, tmp_path, flush_interval_s=60)  # only flush() writes
    log.start()
    for i in range(500):
        log.append(make_record(i))
    assert log.flush()
    assert _count(store_url) == 500
    stats = log.stats
    assert stats["written"] == 500 and stats["pending"] == 0 and stats["store_up"] is True
    log.close()


def test_the_thread_writes_without_being_asked(store_url: str, tmp_path: Path) -> None:
    with _log(store_url, tmp_path) as log:
        for i in range(50):
            log.append(make_record(i))
        wait_for(lambda: log.stats["written"] == 50, what="the periodic flush")
    assert _count(store_url) == 50


def test_close_loses_nothing_and_is_idempotent(store_url: str, tmp_path: Path) -> None:
    log = _log(store_url, tmp_path, flush_interval_s=60)
    log.start()
    for i in range(3000):
        log.append(make_record(i))
    log.close()  # no flush first
    log.close()
    log.append(make_record(99_999))  # after close: counted, never raised
    assert log.stats["dropped"] == 1
    assert _count(store_url) == 3000
    assert _spool_files(tmp_path) == []


def test_appends_from_many_threads_are_all_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    log = _log(url, tmp_path, flush_interval_s=0.01)  # drains while appends race in
    log.start()

    def append_many(worker: int) -> None:
        for i in range(5000):
            log.append(make_record(worker * 100_000 + i))

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert _count(url) == 20_000 and log.stats["written"] == 20_000


@pytest.mark.parametrize(("rate", "low", "high"), [(0.0, 0, 0), (1.0, 2000, 2000), (0.5, 700, 1300)])
def test_sampling(tmp_path: Path, rate: float, low: int, high: int) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with _log(url, tmp_path, sample_rate=rate) as log:
        for i in range(2000):
            log.append(make_record(i))
        assert log.flush()
        stats = log.stats
    stored = _count(url)
    # 0.5: the bounds are more than 13 standard deviations wide
    assert low <= stored <= high
    assert stats["written"] == stored and stats["sampled_out"] == 2000 - stored


def test_beyond_max_buffer_records_are_dropped_and_counted(tmp_path: Path) -> None:
    log = _log(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, max_buffer=10)
    for i in range(15):  # not started: nothing drains the buffer
        log.append(make_record(i))
    assert log.stats["dropped"] == 5 and log.stats["pending"] == 10
    log.close()  # a log that never started spools what it holds
    assert log.stats["spooled"] == 10


def _mask(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["inputs"]["n"] % 5 == 0:
        return None  # e.g. a user who opted out
    return {"inputs": {**doc["inputs"], "text": "***"}, "outputs": doc["outputs"]}


def test_redaction_masks_and_drops(store_url: str, tmp_path: Path) -> None:
    with _log(store_url, tmp_path, redact=_mask) as log:
        for i in range(20):
            log.append(make_record(i))
        assert log.flush()
        assert log.stats["redacted_out"] == 4 and log.stats["written"] == 16
    with open_store(store_url) as store:
        records = store.read_predictions()
    assert [orjson.loads(r.inputs) for r in records] == [{"text": "***", "n": i} for i in range(20) if i % 5]
    assert orjson.loads(records[0].outputs) == {"label": "label-1", "score": 0.5}


def test_a_raising_hook_never_stores_the_raw_input(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(doc: dict[str, Any]) -> dict[str, Any] | None:
        if "SECRET" in doc["inputs"]["text"]:
            raise ValueError("the hook has a bug")
        return doc

    records = [make_record(i) for i in range(4)]
    records.append(make_record(4, inputs=b'{"text": "SECRET card 4111", "n": 4}', outputs=b'{"echo": "SECRET"}'))
    with caplog.at_level(logging.ERROR, logger="shipway.store"), _log(store_url, tmp_path, redact=hook) as log:
        for r in records:
            log.append(r)
        assert log.flush()
        for i in range(5, 10):  # the writer thread survived the hook
            log.append(make_record(i))
        assert log.flush()
        assert log.stats["redaction_failed"] == 1 and log.stats["written"] == 10
    assert "redact hook failed" in caplog.text and "req-4" in caplog.text
    with open_store(store_url) as store:
        stored = {r.request_id: r for r in store.read_predictions()}
    assert len(stored) == 10
    failed = {"redaction_failed": True}
    assert orjson.loads(stored["req-4"].inputs) == failed == orjson.loads(stored["req-4"].outputs)
    assert all(b"SECRET" not in r.inputs + r.outputs for r in stored.values())
    if store_url.startswith("sqlite"):
        assert b"SECRET" not in Path(store_url.removeprefix("sqlite:///")).read_bytes()


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sample_rate must be a number between 0.0 and 1.0, got 1.5"):
        PredictionLog("sqlite:///x.db", spool_dir=tmp_path, sample_rate=1.5)
    with pytest.raises(ConfigError, match="flush_interval_s must be a number greater than 0"):
        PredictionLog("sqlite:///x.db", spool_dir=tmp_path, flush_interval_s=0)
    with pytest.raises(ConfigError, match="max_buffer must be a positive integer"):
        PredictionLog("sqlite:///x.db", spool_dir=tmp_path, max_buffer=0)
    with pytest.raises(StoreError, match="unknown store URL"):
        PredictionLog("redis://x", spool_dir=tmp_path).start()


def test_a_flush_of_many_slices_is_written_in_order_and_redacted_once(tmp_path: Path) -> None:
    # Slices are decoded and redacted one by one (store/pacing.py); the records held while the
    # store and the disk were away were redacted before, and must not pass the hook again.
    calls: list[int] = []

    def star(doc: dict[str, Any]) -> dict[str, Any]:
        calls.append(doc["inputs"]["n"])
        return {"inputs": {**doc["inputs"], "text": doc["inputs"]["text"] + "*"}, "outputs": doc["outputs"]}

    blocker = tmp_path / "data"
    blocker.write_text("a file where the store's folder should be")
    url = f"sqlite:///{blocker / 'store.db'}"
    log = PredictionLog(
        url, spool_dir=blocker / "spool", flush_interval_s=0.05, retry_interval_s=0.1, redact=star, writer=_writer
    )
    log.start()
    n = SLICE_ENTRIES * 2 + 500
    for i in range(n):
        log.append(make_record(i))
    assert log.flush() is False  # held in memory, redacted
    assert log.stats["held"] == n
    for i in range(n, n + SLICE_ENTRIES + 1):
        log.append(make_record(i))
    blocker.unlink()
    wait_for(lambda: log.stats["written"] + log.stats["replayed"] == n + SLICE_ENTRIES + 1, what="every record")
    log.close()
    assert sorted(calls) == list(range(n + SLICE_ENTRIES + 1))  # each record through the hook once
    with open_store(url) as store:
        records = store.read_predictions()
    assert [r.request_id for r in records] == [f"req-{i}" for i in range(n + SLICE_ENTRIES + 1)]
    assert {orjson.loads(r.inputs)["text"][-2:] for r in records} == {f"{i % 10}*" for i in range(10)}


# -- outages -----------------------------------------------------------------------


def test_postgres_outage_spools_then_replays_everything(postgres_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy(pg_target(postgres_url)).start()
    try:
        log = _log(with_port(postgres_url, proxy.port), tmp_path)
        log.start()
        for i in range(50):
            log.append(make_record(i))
        assert log.flush()
        assert _count(postgres_url) == 50  # read directly, not through the proxy

        proxy.stop()  # the database goes away mid-connection
        for i in range(50, 250):
            log.append(make_record(i))  # never raises, never blocks
        assert log.flush()
        stats = log.stats
        assert stats["spooled"] == 200 and stats["store_up"] is False and stats["pending"] == 0
        assert len(_spool_files(tmp_path)) == 1
        assert _count(postgres_url) == 50

        proxy.start()  # back on the same port
        wait_for(lambda: log.stats["store_up"] and not _spool_files(tmp_path), what="the replay")
        for i in range(250, 300):
            log.append(make_record(i))
        log.close()
    finally:
        proxy.stop()
    assert sorted(stored_ids(postgres_url)) == sorted(f"req-{i}" for i in range(300))
    assert log.stats["replayed"] == 200 and log.stats["written"] == 100


def test_a_connection_dropped_while_idle_is_no_outage(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    app = f"shipway_test_{uuid.uuid4().hex[:8]}"
    with _log(with_query(postgres_url, application_name=app), tmp_path) as log:
        log.append(make_record(1))
        assert log.flush()
        with psycopg.connect(os.environ[PG_ENV], autocommit=True) as admin:  # e.g. a server restart
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (app,))
        log.append(make_record(2))
        assert log.flush()
        assert log.stats["written"] == 2 and log.stats["spooled"] == 0 and log.stats["store_up"]


def test_postgres_down_at_start_still_accepts_and_spools(postgres_url: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens here yet
    log = _log(with_port(postgres_url, port), tmp_path)
    log.start()  # must not raise
    for i in range(100):
        log.append(make_record(i))
    assert log.flush()
    assert log.stats["spooled"] == 100 and log.stats["store_up"] is False
    assert len(_spool_files(tmp_path)) == 1
    with TcpProxy(pg_target(postgres_url), port=port).start():
        wait_for(lambda: log.stats["replayed"] == 100 and not _spool_files(tmp_path), what="the replay")
        log.close()
    assert _count(postgres_url) == 100


def test_records_the_store_refuses_are_kept_aside(postgres_url: str, tmp_path: Path) -> None:
    # PostgreSQL refuses a document that is not JSON (only the Python API can send one): one
    # bad record must not sink its batch or loop forever. (\u0000, which it refused before,
    # is stored: store/pg_text.py.)
    bad = make_record(3, inputs=b'{"text": "not json')
    with _log(postgres_url, tmp_path) as log:
        for r in [make_record(i) for i in range(3)] + [bad] + [make_record(i) for i in range(4, 8)]:
            log.append(r)
        assert log.flush()
        assert log.stats["rejected"] == 1 and log.stats["written"] == 7
    assert "req-3" not in stored_ids(postgres_url)
    rejected = list((tmp_path / "spool").glob("rejected-*.jsonl"))
    assert len(rejected) == 1 and b"req-3" in rejected[0].read_bytes()


def test_sqlite_outage_spools_until_the_path_is_fixed(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the store's folder should be")
    url = f"sqlite:///{blocker / 'store.db'}"
    log = _log(url, tmp_path)
    log.start()
    for i in range(40):
        log.append(make_record(i))
    assert log.flush()
    assert log.stats["spooled"] == 40 and not log.stats["store_up"]
    blocker.unlink()  # an operator fixes it
    wait_for(lambda: log.stats["replayed"] == 40, what="the replay")
    log.close()
    assert sorted(stored_ids(url)) == sorted(f"req-{i}" for i in range(40))
    assert _spool_files(tmp_path) == []


def test_when_neither_store_nor_disk_takes_records_they_wait_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the store's folder should be")
    url = f"sqlite:///{blocker / 'store.db'}"
    log = PredictionLog(url, spool_dir=blocker / "spool", flush_interval_s=0.05, retry_interval_s=0.1, writer=_writer)
    log.start()
    for i in range(25):
        log.append(make_record(i))
    assert log.flush() is False  # nothing lost, but nothing safe either
    assert log.stats["pending"] == 25 and log.stats["spooled"] == 0
    blocker.unlink()
    # Straight to the store, or through the spool if the disk came back first.
    wait_for(lambda: log.stats["written"] + log.stats["replayed"] == 25, what="the held records")
    log.close()
    assert _count(url) == 25


def test_records_held_in_memory_are_kept_when_more_arrive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Each cycle used to deliver the held records, then the new batch, and the second
    # failure replaced the first's held records: 25 answered, 10 logged, 0 dropped.
    blocker = tmp_path / "data"
    blocker.write_text("a file where the store's folder should be")
    url = f"sqlite:///{blocker / 'store.db'}"
    log = PredictionLog(url, spool_dir=blocker / "spool", flush_interval_s=0.05, retry_interval_s=0.1, writer=_writer)
    log.start()
    with caplog.at_level(logging.WARNING, logger="shipway.store"):
        for i in range(25):
            log.append(make_record(i))
        assert log.flush() is False
        for i in range(25, 35):
            log.append(make_record(i))
        assert log.flush() is False
    assert log.stats["pending"] == 35 and log.stats["dropped"] == 0
    assert log.stats["held"] == 35
    logged = caplog.text + capfd.readouterr().err  # the writer process logs to its stderr
    assert "25 held in memory (at most 100000), 0 dropped just now, 0 dropped since start" in logged
    blocker.unlink()
    wait_for(lambda: log.stats["written"] + log.stats["replayed"] == 35, what="the held records")
    log.close()
    assert sorted(stored_ids(url)) == sorted(f"req-{i}" for i in range(35))


def test_beyond_the_bound_held_records_are_dropped_counted_and_reach_log_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the store's folder should be")
    url = f"sqlite:///{blocker / 'store.db'}"
    log = PredictionLog(
        url, spool_dir=blocker / "spool", flush_interval_s=0.05, retry_interval_s=0.1, max_buffer=30, writer=_writer
    )
    log.start()
    with caplog.at_level(logging.WARNING, logger="shipway.store"):
        for i in range(25):
            log.append(make_record(i))
        assert log.flush() is False
        for i in range(25, 35):
            log.append(make_record(i))
        assert log.flush() is False
    # The oldest go: every answered record is held or counted as dropped.
    assert log.stats["held"] == 30 and log.stats["dropped"] == 5
    logged = caplog.text + capfd.readouterr().err  # the writer process logs to its stderr
    assert "30 held in memory (at most 30), 5 dropped just now, 5 dropped since start" in logged
    blocker.unlink()
    wait_for(lambda: log.stats["written"] + log.stats["replayed"] == 30, what="the held records")
    wait_for(lambda: _dropped_in_store(url) == 5, what="the drops counted in the store")
    log.close()
    assert sorted(stored_ids(url)) == sorted(f"req-{i}" for i in range(5, 35))


def test_failed_requests_counted_while_the_store_is_down_reach_the_rollups(tmp_path: Path) -> None:
    # They were taken from their queue and discarded while the store was down.
    blocker = tmp_path / "data"
    blocker.write_text("a file where the store's folder should be")
    url = f"sqlite:///{blocker / 'store.db'}"
    log = _log(url, tmp_path)
    log.start()
    for _ in range(3):
        log.append_failure("svc", "m-1", None, 500, 2.0)
    log.append(make_record(0))
    assert log.flush() and log.stats["spooled"] == 1
    blocker.unlink()
    wait_for(lambda: log.stats["replayed"] == 1, what="the replay")
    log.close()
    with open_store(url) as store:
        rows = store._query("SELECT status, SUM(n) FROM prediction_counts GROUP BY status ORDER BY status", [])
    assert [tuple(r) for r in rows] == [(200, 1), (500, 3)]


def _dropped_in_store(url: str) -> int:
    with open_store(url) as store:
        return int(store._query("SELECT COALESCE(SUM(n), 0) FROM log_drops", [])[0][0])


def test_a_full_buffer_drop_is_counted_in_the_store(store_url: str, tmp_path: Path) -> None:
    log = _log(store_url, tmp_path, max_buffer=10)
    for i in range(15):  # not started: nothing takes from the buffer
        log.append(make_record(i, ts=60.0 * 1000 + i))
    assert log.stats["dropped"] == 5
    log.start()
    assert log.flush()
    log.close()
    with open_store(store_url) as store:
        assert store._query("SELECT minute, service, n FROM log_drops", []) == [(1000, "svc", 5)]


# -- hard kills --------------------------------------------------------------------


def _run_child(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_hard_kill_loses_at_most_the_unflushed_tail(store_url: str, tmp_path: Path) -> None:
    done = _run_child(
        f"""
        import os, signal, time
        from pathlib import Path
        from shipway.store import PredictionLog
        from store_fixtures import make_record

        log = PredictionLog({store_url!r}, spool_dir=Path({str(tmp_path / "spool")!r}), flush_interval_s=0.1, writer={_writer!r})
        log.start()
        for i in range(100):
            log.append(make_record(i))
        assert log.flush(30)
        for i in range(100, 150):
            log.append(make_record(i))
        deadline = time.monotonic() + 30  # the flusher has taken part of the tail: kill it mid-run
        while log.stats.get("written", 0) <= 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    ids = stored_ids(store_url)
    assert len(ids) == len(set(ids)) <= 150
    assert {f"req-{i}" for i in range(100)} <= set(ids)


def test_a_dead_process_spool_is_replayed_at_start(store_url: str, tmp_path: Path) -> None:
    done = _run_child(
        f"""
        import os, signal
        from pathlib import Path
        from shipway.store import PredictionLog
        from store_fixtures import make_record

        # The store is unreachable: a file sits where its folder should be.
        Path({str(tmp_path / "blocker")!r}).write_text("x")
        url = "sqlite:///" + {str(tmp_path / "blocker" / "store.db")!r}
        log = PredictionLog(url, spool_dir=Path({str(tmp_path / "spool")!r}), flush_interval_s=0.05, writer={_writer!r})
        log.start()
        for i in range(30):
            log.append(make_record(i))
        assert log.flush(30)
        assert log.stats["spooled"] == 30, log.stats
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert len(_spool_files(tmp_path)) == 1
    with _log(store_url, tmp_path) as log:
        wait_for(lambda: log.stats["replayed"] == 30, what="the replay of the dead process's spool")
    assert _spool_files(tmp_path) == []
    assert sorted(stored_ids(store_url)) == sorted(f"req-{i}" for i in range(30))


def _add(log: PredictionLog, context: tuple[str, str, None, None, None], i: int) -> None:
    decision = None if i % 3 else b'{"queue":"review"}'
    log.add(context, f"r{i}", 1_700_000_000.0 + i, float(i), 200, b'{"i": %d}' % i, b'{"o": %d}' % i, decision, None)


def _add_plain(log: PredictionLog, context: tuple[str, str, None, None, None], i: int) -> None:
    plain = log.plain(context)
    assert plain is not None
    plain((f"r{i}", 1_700_000_000.0 + i, float(i), b'{"i": %d}' % i, b'{"o": %d}' % i))


def test_entries_stay_whole_while_the_writer_takes_them_as_they_are_added(tmp_path: Path) -> None:
    # The request path adds entries, through add() and as plain entries, while the writer
    # thread takes whole ones and splits them into columns: no field may land in another
    # entry, nothing may be lost or doubled, and entries of two contexts (a model swap)
    # keep their own ids.
    url = f"sqlite:///{tmp_path / 'store.db'}"
    a, b = ("svc", "m1", None, None, None, "on"), ("svc", "m2", None, None, None, "on")
    n = 40_000
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # many more thread switches (an entry cut short: the next test)
    try:
        with _log(url, tmp_path, flush_interval_s=0.001, max_buffer=1_000_000) as log:
            for i in range(n):
                (_add_plain if i % 3 == 1 else _add)(log, a if i % 7 else b, i)
    finally:
        sys.setswitchinterval(switch)
    assert log.stats["written"] == n
    with open_store(url) as store:
        records = store.read_predictions()
    assert sorted(int(r.request_id[1:]) for r in records) == list(range(n))
    for r in records:
        i = int(r.request_id[1:])
        assert (r.ts, r.latency_ms, r.status) == (1_700_000_000.0 + i, float(i), 200)
        assert (r.inputs, r.outputs) == (b'{"i": %d}' % i, b'{"o": %d}' % i)
        assert r.decision == (None if i % 3 else b'{"queue":"review"}') and r.shadow is None
        assert r.model_version == ("m1" if i % 7 else "m2")


def test_plain_entries_are_stored_with_status_200_and_no_decision(store_url: str, tmp_path: Path) -> None:
    # A plain entry is five fields; the writer fills in the status, decision and shadow,
    # and writes them beside entries that came through add() in the same batch.
    context = ("svc", "m-1", None, None, None, "on")
    with _log(store_url, tmp_path, flush_interval_s=60) as log:
        for i in range(300):
            _add_plain(log, context, i)
        log.add(context, "a1", 1_700_000_500.5, 2.0, 200, b'{"t": 1}', b'{"l": 2}', b'{"queue":"review"}', None)
        assert log.stats["pending"] == 301
        assert log.flush()
        assert log.stats["written"] == 301 and log.stats["pending"] == 0
    with open_store(store_url) as store:
        records = {r.request_id: r for r in store.read_predictions()}
    assert len(records) == 301
    for i in range(300):
        r = records[f"r{i}"]
        assert (r.ts, r.latency_ms, r.status, r.decision, r.shadow) == (1_700_000_000.0 + i, float(i), 200, None, None)
        assert (orjson.loads(r.inputs), orjson.loads(r.outputs)) == ({"i": i}, {"o": i})  # PostgreSQL respaces
        assert (r.service, r.model_version, r.rules_version) == ("svc", "m-1", None)
    assert orjson.loads(records["a1"].decision or b"null") == {"queue": "review"}


def test_plain_is_none_whenever_entries_must_go_through_add(tmp_path: Path) -> None:
    # Sampling, a full buffer and a closed log are checked by add() on every call; the
    # request path's way around add() is not given while any of them applies.
    url = f"sqlite:///{tmp_path / 'store.db'}"
    context = ("svc", "m-1", None, None, None, "on")
    assert _log(url, tmp_path, sample_rate=0.5).plain(context) is None
    log = _log(url, tmp_path, max_buffer=10)  # not started: nothing drains the buffer
    for i in range(10):
        _add_plain(log, context, i)
    assert log.plain(context) is None and log.stats["pending"] == 10
    _add(log, context, 10)  # so it goes through add(), which drops and counts it
    assert log.stats["dropped"] == 1
    log.close()
    assert log.stats["spooled"] == 10
    assert log.plain(context) is None
    # The same context is the same list: a caller may keep what plain() gave.
    buffer = LogBuffer()
    assert buffer.plain(context) is buffer.plain(("svc", "m-1", None, None, None, "on"))
    assert buffer.plain(context) is not buffer.plain(("svc", "m-2", None, None, None, "on"))


def test_an_entry_not_whole_is_left_for_the_next_take() -> None:
    # The request path adds an entry in one extend, whole under the GIL; should the list
    # ever end part way through an entry, the writer takes the whole ones before it only.
    buffer = LogBuffer()
    context = ("svc", "m1", None, None, None, "on")
    fields = (context, "r1", 1_700_000_000.0, 2.5, 200, b'{"i": 1}', b'{"o": 1}', b'{"queue":"auto"}', None)
    buffer.fields.extend(fields[:5])
    assert len(buffer) == 0 and buffer.take() == []
    buffer.fields.extend(fields[5:])
    buffer.fields.extend(fields[:3])
    assert len(buffer) == 1
    [group] = buffer.take()
    assert group.context == context
    assert group.rows() == [("r1", 1_700_000_000.0, 2.5, 200, '{"i": 1}', '{"o": 1}', '{"queue":"auto"}', None)]
    assert buffer.fields == list(fields[:3])
    # The same for a plain entry, which is five fields.
    plain = buffer.plain(context)
    plain.extend(("p1", 1_700_000_001.0, 3.5, b'{"i": 2}', b'{"o": 2}', "p2", 1_700_000_002.0))
    [group] = buffer.take()
    assert group.rows() == [("p1", 1_700_000_001.0, 3.5, 200, '{"i": 2}', '{"o": 2}', None, None)]
    assert plain == ["p2", 1_700_000_002.0] and len(buffer) == 0


def test_a_take_without_decoding_keeps_the_bytes_and_decoded_gives_what_take_gives() -> None:
    context = ("svc", "m1", None, None, None, "on")
    fields = (context, "r1", 1_700_000_000.0, 2.5, 200, b'{"i": 1}', b'{"o": "caf\xe9"}', b'{"queue":"auto"}', None)
    plain = ("p1", 1_700_000_001.0, 3.5, b'{"i": 2}', b'{"o": 2}')
    raw, whole = LogBuffer(), LogBuffer()
    for buffer in (raw, whole):
        buffer.fields.extend(fields)
        buffer.plain(context).extend(plain)
    groups = raw.take(decode=False)
    assert [g.inputs for g in groups] == [[b'{"i": 1}'], [b'{"i": 2}']]
    assert decoded(groups) == whole.take()
    assert decoded(groups)[0].outputs == ['{"o": "caf\udce9"}']  # not UTF-8: a surrogate, for the store to refuse


def test_a_document_that_is_not_utf8_is_kept_aside_and_its_batch_written(tmp_path: Path) -> None:
    # The buffer keeps the bytes as they came; the writer decodes them, and the store refuses
    # the one that is not UTF-8 with its error, found by halving the batch.
    url = f"sqlite:///{tmp_path / 'store.db'}"
    bad = make_record(3, inputs=b'{"text": "caf\xe9"}')  # Latin-1, not UTF-8
    with _log(url, tmp_path) as log:
        for r in [make_record(i) for i in range(3)] + [bad] + [make_record(i) for i in range(4, 8)]:
            log.append(r)
        assert log.flush()
        assert log.stats["rejected"] == 1 and log.stats["written"] == 7
    assert sorted(stored_ids(url)) == sorted(f"req-{i}" for i in range(8) if i != 3)
    [rejected] = (tmp_path / "spool").glob("rejected-*.jsonl")
    assert b"req-3" in rejected.read_bytes()


def test_a_refused_entry_that_cannot_be_encoded_is_kept_as_its_repr() -> None:
    good = make_record(1, inputs=b'{"text": "caf\xc3\xa9"}')
    broken = (*entry_of(make_record(2))[:5], 12345, "{}", None, None)  # inputs that are no document
    lines = refused_lines([entry_of(good), broken])  # type: ignore[list-item]
    assert decode_line(lines[0]) == good
    assert orjson.loads(lines[1]) == {"unreadable_record": repr(broken)}
