"""The pre-fork server: workers, a worker that dies, SIGTERM under load, overload."""

from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import SERVICES, start_server, wait_for

FAULTY = SERVICES / "faulty"


def logged_ids(store_url: str) -> set[str]:
    with sqlite3.connect(store_url.removeprefix("sqlite:///")) as conn:
        return {row[0] for row in conn.execute("select request_id from predictions")}


def test_workers_share_the_preloaded_model_and_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    server = start_server(FAULTY, tmp_path, "--workers", "2")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answers = [client.post("/predict", json={"text": "hi"}).json() for _ in range(40)]
            pids = {a["pid"] for a in answers}
            # load() ran once, in the parent, before the workers were forked
            assert {a["loaded_in"] for a in answers} == {server.proc.pid}
            assert server.proc.pid not in pids
        with pytest.raises(httpx.HTTPError):
            httpx.post(server.url + "/predict", json={"text": "die"}, timeout=10)
        deadline = time.monotonic() + 30
        seen: set[int] = set()
        while time.monotonic() < deadline and len(seen - pids) == 0:
            try:
                response = httpx.post(server.url + "/predict", json={"text": "after"}, timeout=5)
                if response.status_code == 200:
                    seen.add(response.json()["pid"])
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        assert seen - pids, "no replacement worker answered within 30 s"
        assert server.proc.poll() is None
        assert httpx.get(server.url + "/ready").status_code == 200
    finally:
        assert server.stop() == 0


def test_sigterm_under_load_finishes_in_flight_and_loses_no_log(tmp_path: Path) -> None:
    server = start_server(FAULTY, tmp_path, "--workers", "2")
    statuses: list[int] = []
    ok_ids: list[str] = []
    stop = threading.Event()

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            i = 0
            while not stop.is_set():
                rid = f"load-{n}-{i}"
                i += 1
                try:
                    response = client.post(
                        "/predict", json={"text": "x", "sleep_s": 0.02}, headers={"x-request-id": rid}
                    )
                except httpx.HTTPError:
                    if server.proc.poll() is not None:
                        return
                    time.sleep(0.01)
                    continue
                statuses.append(response.status_code)
                if response.status_code == 200:
                    ok_ids.append(rid)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    wait_for(lambda: len(ok_ids) > 20, 60, "the load to be under way")
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(60)
    stop.set()
    for t in threads:
        t.join(30)
    assert code == 0, server.log
    assert len(ok_ids) > 20
    assert all(s == 200 for s in statuses), sorted(set(statuses))
    missing = set(ok_ids) - logged_ids(server.store_url)
    assert not missing, f"{len(missing)} answered predictions were not logged"


def test_overload_answers_503_with_retry_after(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(FAULTY / "service.py", project / "service.py")
    (project / "shipway.toml").write_text("[batching]\nmax_batch_size = 1\nmax_queue = 2\n")
    server = start_server(project, tmp_path)
    try:
        with cf.ThreadPoolExecutor(12) as pool:
            responses = list(
                pool.map(
                    lambda _: httpx.post(server.url + "/predict", json={"text": "x", "sleep_s": 0.3}, timeout=30),
                    range(12),
                )
            )
        refused = [r for r in responses if r.status_code == 503]
        assert refused and any(r.status_code == 200 for r in responses)
        error = refused[0].json()["error"]
        assert error["type"] == "overloaded" and "batching.max_queue" in error["message"]
        assert int(refused[0].headers["retry-after"]) >= 1
        assert 'type="overloaded"' in httpx.get(server.url + "/metrics").text
    finally:
        server.stop()


def test_load_failure_stops_serve_with_the_reason(tmp_path: Path) -> None:
    project = tmp_path / "broken"
    project.mkdir()
    (project / "service.py").write_text(
        "def load(artifacts):\n    return open(artifacts / 'model.bin', 'rb').read()\n"
        "def predict(model, x: int) -> int:\n    return x\n"
    )
    server = start_server(project, tmp_path, wait=False)
    assert server.proc.wait(60) == 2
    assert "load() raised FileNotFoundError" in server.log and "train the model" in server.log


def test_logs_are_json_lines(tmp_path: Path) -> None:
    server = start_server(SERVICES / "identity", tmp_path, "--access-log")
    try:
        httpx.post(server.url + "/predict", json={"text": "x"}, headers={"x-request-id": "json-log-1"})
    finally:
        server.stop()
    import json

    records = [json.loads(line) for line in server.log.splitlines() if line.startswith("{")]
    assert records, server.log
    assert all({"ts", "level", "msg"} <= set(r) for r in records)
    assert any(r.get("request_id") == "json-log-1" and r["msg"] == "request" for r in records)


def test_a_stuck_predict_gets_its_worker_replaced(tmp_path: Path) -> None:
    server = start_server(FAULTY, tmp_path)  # predict_timeout_s = 1: stuck after 2 * 1 + 5 s
    try:
        first_pid = httpx.post(server.url + "/predict", json={"text": "hi"}).json()["pid"]
        response = httpx.post(server.url + "/predict", json={"text": "hang", "sleep_s": 120}, timeout=30)
        assert response.status_code == 504
        deadline = time.monotonic() + 60
        new_pid = first_pid
        while time.monotonic() < deadline and new_pid == first_pid:
            try:
                response = httpx.post(server.url + "/predict", json={"text": "after"}, timeout=2)
                if response.status_code == 200:
                    new_pid = response.json()["pid"]
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert new_pid != first_pid, "the stuck worker was not replaced within 60 s"
        assert "predict is stuck" in server.log
    finally:
        assert server.stop() == 0


def _log_writers(pid: int) -> set[int]:
    """The prediction-log writer processes under process `pid` (children of its workers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            session = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, ValueError):
            continue
        if session == pid and b"shipway.store.log_writer" in cmdline:
            found.add(int(entry.name))
    return found


def test_a_log_writer_killed_under_load_is_replaced_and_loses_no_log(tmp_path: Path) -> None:
    project = Path(shutil.copytree(FAULTY, tmp_path / FAULTY.name, ignore=shutil.ignore_patterns("__pycache__")))
    toml = project / "shipway.toml"
    toml.write_text(toml.read_text().replace("[log]\n", '[log]\nwriter = "process"\n'))  # not the default
    server = start_server(project, tmp_path, "--workers", "1")
    statuses: list[int] = []
    ok_ids: list[str] = []
    stop = threading.Event()

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            i = 0
            while not stop.is_set():
                rid = f"load-{n}-{i}"
                i += 1
                response = client.post("/predict", json={"text": "x"}, headers={"x-request-id": rid})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    ok_ids.append(rid)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(ok_ids) > 50 and len(_log_writers(server.proc.pid)) == 1, 60, "the load and the writer")
        (first,) = _log_writers(server.proc.pid)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: _log_writers(server.proc.pid) - {first}, 60, "a new writer process")
        answered = len(ok_ids)
        wait_for(lambda: len(ok_ids) > answered + 50, 60, "answers after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert server.stop() == 0, server.log
    assert ok_ids and all(s == 200 for s in statuses), sorted(set(statuses))
    missing = set(ok_ids) - logged_ids(server.store_url)
    assert not missing, f"{len(missing)} answered predictions were not logged"
