"""Shared fixtures: real servers on real sockets, started the way users start them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = Path(__file__).resolve().parent / "services"
SHIPWAY = [sys.executable, "-m", "shipway"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A `shipway serve` process and how to reach it."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    store_url: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server did not stop within {timeout} s:\n{self.log}") from None

    def kill(self) -> None:
        """SIGKILL the arbiter and its workers (they share its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def start_server(
    target: Path | str,
    tmp: Path,
    *args: str,
    store_url: str | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Server:
    port = free_port()
    if isinstance(target, Path) and target.is_dir() and not (tmp / target.name).exists():
        # Serve a copy, so the spool and other files a project gets stay in tmp.
        target = Path(shutil.copytree(target, tmp / target.name, ignore=shutil.ignore_patterns("__pycache__")))
    elif isinstance(target, Path) and target.is_dir():
        target = tmp / target.name
    store_url = store_url or f"sqlite:///{tmp / 'store.db'}"
    log_path = tmp / f"server-{port}.log"
    cmd = [*SHIPWAY, "serve", str(target), "--port", str(port), "--store", store_url, *args]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("SHIPWAY_STORE_URL", None)
    with log_path.open("wb") as out:
        # A session of its own, so that cleanup can kill the workers with the arbiter.
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=tmp, start_new_session=True
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path, store_url)
    _STARTED.append(server)
    if wait:
        server.wait_ready()
    return server


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """Start servers with `serve(target, *flags)`; each is stopped after the test."""
    started: list[Server] = []

    def _start(target: Path | str, *args: str, **kwargs: object) -> Server:
        server = start_server(target, tmp_path, *args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield _start
    for server in started:
        server.kill()


_STARTED: list[Server] = []

EXAMPLE = ROOT / "examples" / "banking77"


@pytest.fixture(scope="session")
def banking77(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The banking77 example with a trained model: its own artifacts when trained (make train),
    else one fresh training in a copy, shared by the whole run."""
    if (EXAMPLE / "artifacts" / "model.skops").is_file():
        return EXAMPLE
    import importlib.util

    root = tmp_path_factory.mktemp("banking77")
    for name in ("service.py", "shipway.toml", "rules.yaml"):
        shutil.copy(EXAMPLE / name, root / name)
    shutil.copytree(EXAMPLE / "data", root / "data")  # as the example holds it: tests read its splits
    steps = {}
    for name in ("data", "train"):
        spec = importlib.util.spec_from_file_location(f"conftest_banking77_{name}", EXAMPLE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        steps[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(steps[name])
    steps["data"].build_dataset(EXAMPLE / "data", root / "dataset")
    steps["train"].train(root / "dataset", root / "artifacts")
    return root


def logged_row(server: Server, request_id: str, columns: str) -> tuple[Any, ...]:
    """`columns` of the request's row in the server's SQLite prediction log, once the log has
    written it (it writes every half second)."""
    db = server.store_url.removeprefix("sqlite:///")
    for _ in range(100):
        with sqlite3.connect(db) as conn:
            row = conn.execute(f"select {columns} from predictions where request_id = ?", (request_id,)).fetchone()
        if row:
            return tuple(row)
        time.sleep(0.05)
    raise AssertionError(f"{request_id} was not logged within 5 s")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Whatever a failing test left running must not outlive the run.
    for server in _STARTED:
        server.kill()
