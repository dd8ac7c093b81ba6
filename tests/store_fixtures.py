"""Fixtures and helpers for the store tests (conftest.py is shared, so tests import these).

`store_url` runs a test once per backend: a SQLite file in tmp_path, and a fresh
PostgreSQL schema (from SHIPWAY_TEST_POSTGRES_URL) dropped after the test.
`TcpProxy` stands between a client and PostgreSQL so a test can cut the line.

Test modules load the fixtures with `pytest_plugins = ["store_fixtures"]` and import
the helpers; pytest cannot rewrite asserts in a module imported before it loads it as
a plugin, hence PYTEST_DONT_REWRITE (this module raises AssertionError itself).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import pytest
from conftest import wait_for  # noqa: F401  (the one bounded wait, also imported from here)

from shipway.store import PredictionRecord, open_store

PG_ENV = "SHIPWAY_TEST_POSTGRES_URL"
PG_SKIP = f"set {PG_ENV}=postgresql://... to run the PostgreSQL backend tests"


def make_record(i: int, *, service: str = "svc", ts: float | None = None, **fields: Any) -> PredictionRecord:
    """A distinct record per `i`, with small but real JSON documents."""
    values: dict[str, Any] = {
        "request_id": f"req-{i}",
        "ts": 1_700_000_000.0 + i if ts is None else ts,
        "service": service,
        "model_version": "m-1",
        "latency_ms": 1.25 + i,
        "inputs": orjson.dumps({"text": f"input {i}", "n": i}),
        "outputs": orjson.dumps({"label": f"label-{i % 3}", "score": 0.5}),
    }
    values.update(fields)
    return PredictionRecord(**values)


def with_query(url: str, **params: str) -> str:
    """`url` with query parameters added or replaced."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def pg_target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def free_port() -> int:
    """A free port below Linux's ephemeral range (32768+).

    A client retrying a closed ephemeral port can be handed that very port as its
    own source port and connect to itself, after which nobody can listen there.
    """
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


def stored_ids(url: str, base_dir: Path | None = None) -> list[str]:
    store = open_store(url, base_dir)
    try:
        return [r.request_id for r in store.read_predictions()]
    finally:
        store.close()


def postgres_at(url: str, version: int) -> Any:
    """An open psycopg connection to a PostgreSQL store exactly as schema `version` left it
    (the first `version` steps run, and recorded); close it after use."""
    psycopg = pytest.importorskip("psycopg")
    from shipway.store.postgres import _MIGRATIONS

    conn = psycopg.connect(url, autocommit=True)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
    for step, statements in _MIGRATIONS[:version]:
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (%s, 0)", (step,))
    return conn


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a schema of its own, so tests never see each other's rows."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    psycopg = pytest.importorskip("psycopg")
    schema = f"shipway_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_query(base, options=f"-csearch_path={schema}")
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn: both must pass the same tests."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


class TcpProxy:
    """Forwards 127.0.0.1:`port` to a target; `stop()` cuts every connection.

    While stopped the port refuses connections, as a crashed server's would;
    `start()` listens on the same port again.
    """

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = False
        self._acceptor: threading.Thread | None = None

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)  # accept() polls, so stop() never waits on it
        self._listener = listener
        self._running = True
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._acceptor is not None:
            # The listening socket only closes once accept() stops polling it.
            self._acceptor.join(5)
            self._acceptor = None
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._running:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if not self._running:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_from_process(url: str, worker: int, count: int, batch: int, go: Any) -> None:
    """Target of the multi-process SQLite test: opens its own store and writes."""
    go.wait(30)
    store = open_store(url)
    try:
        for start in range(0, count, batch):
            records = [make_record(worker * 1_000_000 + i) for i in range(start, min(start + batch, count))]
            store.write_predictions(records)
    finally:
        store.close()
