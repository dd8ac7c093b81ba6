"""Shared fixtures: the real service in-process over ASGI (no socket), real servers on real
sockets started the way users start them (for workers, signals and sockets), and `wait_for`,
the one way a test waits for something to happen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

# pytest imports this file as `tests.conftest` (importlib mode, pyproject.toml); test modules write
# `from conftest import ...`. One module under both names, so the servers they start are the ones
# this file stops at the end of the run.
sys.modules.setdefault("conftest", sys.modules[__name__])

ROOT = Path(__file__).resolve().parent.parent
SERVICES = Path(__file__).resolve().parent / "services"
SHIPWAY = [sys.executable, "-m", "shipway"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy and return its value: a bounded wait on something that
    happens, never a fixed sleep and never a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Requests:
    """Requests to a service, whichever way it runs: `service.post("/predict", json=...)`."""

    url: str

    def client(self, **kwargs: Any) -> httpx.Client:
        raise NotImplementedError

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@dataclass
class Server(Requests):
    """A `shipway serve` process and how to reach it."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    store_url: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                return httpx.get(self.url + "/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(ready, timeout, "the server to be ready")
        except AssertionError as err:
            raise AssertionError(f"{err}; its log:\n{self.log}") from None

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


# -- the service in-process ----------------------------------------------------------------------


class _AppTransport(httpx.BaseTransport):
    """httpx's ASGI transport for a synchronous client: each request runs on the app's event loop."""

    def __init__(self, app: Any, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._run = run

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a body given as a generator becomes bytes the async transport can stream

        async def exchange() -> tuple[int, httpx.Headers, bytes]:
            response = await self._asgi.handle_async_request(request)
            return response.status_code, response.headers, await response.aread()

        status, headers, body = self._run(exchange())
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        """Each client closes its transport; the app lives until InProcess.stop()."""


class _LogLines(logging.Handler):
    """The app's log records as the JSON lines `shipway serve` writes."""

    def __init__(self) -> None:
        from shipway.serving.logs import JsonFormatter

        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class InProcess(Requests):
    """The real App of a project, built as `shipway serve` builds it and driven over ASGI in this
    process: its start-up (warm-up, prediction log, rules, jobs) and its shutdown run as in a worker;
    requests go through httpx without a socket. For everything but workers, signals and sockets."""

    url = "http://shipway.test"

    def __init__(self, app: Any, store_url: str) -> None:
        self.app = app
        self.store_url = store_url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="in-process-app", daemon=True)
        self._thread.start()
        self._logs = _LogLines()
        self._lifespan: tuple[asyncio.Queue[dict[str, Any]], asyncio.Queue[dict[str, Any]], Any] | None = None

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        """Run `coro` on the app's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, transport=_AppTransport(self.app, self.run), timeout=30, **kwargs)

    @property
    def log(self) -> str:
        return "\n".join(self._logs.lines)

    def start(self) -> None:
        logger = logging.getLogger("shipway")
        logger.addHandler(self._logs)
        self._level = logger.level
        logger.setLevel(logging.INFO)

        async def startup() -> tuple[Any, ...]:
            inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            task = asyncio.create_task(
                self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
            )
            await inbox.put({"type": "lifespan.startup"})
            message = await outbox.get()
            if message["type"] != "lifespan.startup.complete":
                raise AssertionError(f"the app did not start: {message.get('message')}\n{self.log}")
            return inbox, outbox, task

        self._lifespan = self.run(startup())

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(lambda: self.get("/ready").status_code == 200, timeout, "the service to be ready")

    def stop(self) -> None:
        """The worker's shutdown: queued predictions finish, the log writes every record."""
        if self._lifespan is not None:
            inbox, outbox, task = self._lifespan
            self._lifespan = None

            async def shutdown() -> None:
                await inbox.put({"type": "lifespan.shutdown"})
                await outbox.get()
                await task

            self.run(shutdown())
        logger = logging.getLogger("shipway")
        logger.removeHandler(self._logs)
        logger.setLevel(self._level)
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


@contextlib.contextmanager
def in_process(
    target: Path | str,
    tmp: Path,
    *args: str,
    store_url: str | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Iterator[InProcess]:
    """The project in `target` served in-process with `shipway serve` flags `args`: the same
    settings, gate, alert and rollout jobs and dashboard as `shipway serve`, from a copy of the project in
    `tmp`, with `env` set while it runs. Started, ready (unless `wait=False`), stopped at the end."""
    from shipway.cli.common import open_project
    from shipway.cli.main import serve as serve_command
    from shipway.cli.main import served_beside
    from shipway.serving.app import App

    if isinstance(target, Path) and target.is_dir():
        copy = tmp / target.name
        if not copy.exists():
            shutil.copytree(target, copy, ignore=shutil.ignore_patterns("__pycache__"))
        target = copy
    store_url = store_url or f"sqlite:///{tmp / 'store.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SHIPWAY_STORE_URL", raising=False)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        # The flags as `shipway serve` parses them, port aside: there is no socket.
        params = serve_command.make_context("serve", [str(target), "--store", store_url, *args]).params
        flags = {key: value for key, value in params.items() if key != "target" and value is not None}
        project = open_project(str(target), flags, gated=True)
        app = App(project, *served_beside(project))  # the jobs and dashboard `shipway serve` runs
        served = InProcess(app, store_url)
        try:
            served.start()
            if wait:
                served.wait_ready()
            yield served
        finally:
            served.stop()


@pytest.fixture
def serve_in_process(tmp_path: Path) -> Iterator[Callable[..., InProcess]]:
    """Start in-process services with `serve_in_process(target, *flags)`; each stops after the test."""
    with contextlib.ExitStack() as stack:

        def _start(target: Path | str, *args: str, **kwargs: Any) -> InProcess:
            return stack.enter_context(in_process(target, tmp_path, *args, **kwargs))

        yield _start


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


def logged_row(server: Server | InProcess, request_id: str, columns: str) -> tuple[Any, ...]:
    """`columns` of the request's row in the server's SQLite prediction log, once the log has
    written it (it writes every half second)."""
    db = server.store_url.removeprefix("sqlite:///")

    def row() -> tuple[Any, ...] | None:
        with contextlib.closing(sqlite3.connect(db)) as conn:  # closed each poll, not when collected
            found = conn.execute(f"select {columns} from predictions where request_id = ?", (request_id,)).fetchone()
        return tuple(found) if found else None

    return wait_for(row, 10, f"{request_id} to be logged")  # type: ignore[no-any-return]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Whatever a failing test left running must not outlive the run.
    for server in _STARTED:
        server.kill()
