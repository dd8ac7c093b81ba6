"""The prediction log's writer process: what a worker hands over survives either side's death.

Everything else about the log runs with both writers in test_prediction_log.py.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
from store_fixtures import make_record, stored_ids, wait_for

from shipway.store import PredictionLog, open_store

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers: it is dead for us once its parent reaped it or it shows as such.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_writer_killed_under_load_is_replaced_and_nothing_is_lost(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    log = PredictionLog(url, spool_dir=tmp_path / "spool", flush_interval_s=0.05, writer="process")
    log.start()
    n = 20_000
    added = threading.Event()

    def serve() -> None:  # the request path: it never waits for the writer
        for i in range(n):
            log.append(make_record(i))
            if i % 500 == 0:
                time.sleep(0.005)
        added.set()

    thread = threading.Thread(target=serve)
    thread.start()
    wait_for(lambda: log.stats["written"] > 0, what="the first writes")
    first = log.writer_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: log.writer_pid not in (None, first), what="a new writer process")
    thread.join()
    assert added.is_set()
    assert log.flush(30)
    log.close()
    ids = stored_ids(url)
    assert Counter(ids) == Counter(f"req-{i}" for i in range(n))  # each once: the replay skips what is stored
    stats = log.stats
    assert stats["dropped"] == 0 and stats["pending"] == 0
    assert not _alive(first)


def test_a_killed_serving_process_leaves_its_writer_to_write_what_it_was_sent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    code = f"""
        import os, signal, time
        from pathlib import Path
        from shipway.store import PredictionLog, open_store
        from store_fixtures import make_record

        # Long intervals: only the hand-over moves records out of this process before the kill.
        log = PredictionLog({url!r}, spool_dir=Path({str(tmp_path / "spool")!r}), flush_interval_s=1.0,
                            writer="process")
        log.start()
        print(log.writer_pid, flush=True)
        for i in range(150):
            log.append(make_record(i))
        deadline = time.monotonic() + 30
        while len(log._buffer) and time.monotonic() < deadline:  # handed over, not yet known written
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    # The pipes close once the writer, which shares them, has written what it had and exited.
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    writer = int(done.stdout.split()[0])
    wait_for(lambda: not _alive(writer), what="the orphaned writer's exit")
    assert sorted(stored_ids(url)) == sorted(f"req-{i}" for i in range(150))


def test_an_importable_redact_hook_runs_in_the_writer_process(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks_for_the_writer.py"
    hooks.write_text(
        textwrap.dedent(
            """
            import os

            def redact(doc):
                return {"inputs": {"masked_by": os.getpid()}, "outputs": doc["outputs"]}
            """
        )
    )
    spec = importlib.util.spec_from_file_location("hooks_for_the_writer", hooks)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as shipway imports a service.py
    spec.loader.exec_module(module)
    try:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        log = PredictionLog(url, spool_dir=tmp_path / "spool", redact=module.redact, writer="process")
        log.start()
        for i in range(20):
            log.append(make_record(i))
        assert log.flush(30)
        writer = log.writer_pid
        log.close()
    finally:
        del sys.modules[spec.name]
    assert writer is not None  # no fallback to the thread
    with open_store(url) as store:
        records = store.read_predictions()
    assert len(records) == 20
    assert {orjson.loads(r.inputs)["masked_by"] for r in records} == {writer}


def test_a_hook_the_writer_process_cannot_load_falls_back_to_the_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    log = PredictionLog(
        url,
        spool_dir=tmp_path / "spool",
        redact=lambda doc: {"inputs": {"masked": True}, "outputs": doc["outputs"]},  # no importable name
        writer="process",
    )
    log.start()
    for i in range(20):
        log.append(make_record(i))
    assert log.flush(30)
    assert log.writer_pid is None
    for i in range(20, 30):
        log.append(make_record(i))
    log.close()
    assert log.stats["written"] == 30 and log.stats["dropped"] == 0
    with open_store(url) as store:
        records = store.read_predictions()
    assert sorted(r.request_id for r in records) == sorted(f"req-{i}" for i in range(30))
    assert all(orjson.loads(r.inputs) == {"masked": True} for r in records)  # never unredacted
