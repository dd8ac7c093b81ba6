"""The one token check (admin routes, feedback, dashboard): the exact Bearer scheme, and wrong
tokens limited per client address. In-process, over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from conftest import SERVICES
from starlette.requests import Request

from shipway.monitoring.dashboard import Dashboard, access
from shipway.project import Project
from shipway.serving.app import App
from shipway.web.tokens import FailedAttempts, bearer

TOKEN = "s3cret-token"
HOST = "203.0.113.9"
OTHER = "198.51.100.4"


def auth(value: str) -> dict[str, str]:
    return {"authorization": value}


def with_app(tmp_path: Path, test: Callable[[Callable[[str], httpx.AsyncClient]], Awaitable[None]]) -> None:
    """Run `test` against the identity service, started in-process; it gets a client factory by address."""
    project = Path(shutil.copytree(SERVICES / "identity", tmp_path / "identity"))
    (project / "shipway.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n[log]\nenabled = false\n'
    )
    app = App(Project.load(project))

    async def run() -> None:
        await app.startup()
        try:

            def client(host: str) -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=(host, 4000))  # type: ignore[arg-type]
                return httpx.AsyncClient(transport=transport, base_url="http://service")

            await test(client)
        finally:
            await app.shutdown()

    asyncio.run(run())


def test_wrong_tokens_are_limited_per_client_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPWAY_ADMIN_TOKEN", TOKEN)

    async def test(client: Callable[[str], httpx.AsyncClient]) -> None:
        async with client(HOST) as guesser, client(OTHER) as other:
            for _ in range(5):  # no token at all is not a guess
                assert (await guesser.get("/admin/rules")).status_code == 401
            assert (await guesser.get("/admin/rules", headers=auth(f"Bearer {TOKEN}"))).status_code == 200
            for i in range(10):
                wrong = await guesser.get("/admin/rules", headers=auth(f"Bearer guess-{i}"))
                assert wrong.status_code == 401, wrong.text
            limited = await guesser.get("/admin/rules", headers=auth(f"Bearer {TOKEN}"))
            assert limited.status_code == 429  # the right token too: it is not even compared
            assert 1 <= int(limited.headers["retry-after"]) <= 6
            error = limited.json()["error"]
            assert error["type"] == "too_many_attempts" and f"from {HOST}" in error["message"]
            assert error["request_id"] == limited.headers["x-request-id"]
            # Feedback takes the same token (no SHIPWAY_FEEDBACK_TOKEN) and the same count.
            feedback = await guesser.post("/feedback", json={"items": []}, headers=auth(f"Bearer {TOKEN}"))
            assert feedback.status_code == 429
            # Another address is not held back.
            assert (await other.get("/admin/rules", headers=auth(f"Bearer {TOKEN}"))).status_code == 200

    with_app(tmp_path, test)


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),  # RFC 7235: the scheme is case-insensitive
        (f"BEARER {TOKEN}", 200),
        (TOKEN, 401),
        (f"Token {TOKEN}", 401),
        (f"Basic {TOKEN}", 401),
        (f"Bearer  {TOKEN}", 401),
        (f"Bearer {TOKEN} ", 401),
        (f"Bearer {TOKEN} x", 401),
        ("Bearer ", 401),
    ],
)
def test_only_the_exact_bearer_scheme_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str, status: int
) -> None:
    monkeypatch.setenv("SHIPWAY_ADMIN_TOKEN", TOKEN)

    async def test(client: Callable[[str], httpx.AsyncClient]) -> None:
        async with client(HOST) as caller:
            response = await caller.get("/admin/rules", headers=auth(header))
            assert response.status_code == status, response.text
            if status == 401:
                assert "`Authorization: Bearer <token>` (exactly that scheme)" in response.json()["error"]["message"]

    with_app(tmp_path, test)
    # The dashboard takes the same one check: before it, it stripped the spaces off.
    scope = {"client": (HOST, 1), "headers": [(b"authorization", header.encode())]}
    assert access.check(Request({"type": "http", **scope}), token=TOKEN) == ("ok" if status == 200 else "login")


def test_the_dashboard_limits_wrong_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPWAY_ADMIN_TOKEN", TOKEN)
    dashboard = Dashboard(f"sqlite:///{tmp_path / 'store.db'}", "identity")

    async def run() -> None:
        transport = httpx.ASGITransport(app=dashboard, client=(HOST, 4000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as guesser:
            for i in range(6):
                login = await guesser.post("/dashboard/login", data={"token": f"guess-{i}"})
                assert login.status_code == 401
            for i in range(4):
                api = await guesser.get("/dashboard/api/snapshot", headers=auth(f"Bearer guess-{i}"))
                assert api.status_code == 401
            assert (await guesser.get("/dashboard/api/snapshot")).status_code == 401  # no token: not counted
            limited = await guesser.post("/dashboard/login", data={"token": TOKEN})
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limited.json()["error"]["type"] == "too_many_attempts"
            api = await guesser.get("/dashboard/api/snapshot", headers=auth(f"Bearer {TOKEN}"))
            assert api.status_code == 429

    asyncio.run(run())


def test_failed_attempts_refill_one_every_interval() -> None:
    attempts = FailedAttempts(burst=3, every_s=10.0)
    for _ in range(3):
        assert attempts.retry_after("a", now=100.0) == 0
        attempts.failed("a", now=100.0)
    assert attempts.retry_after("a", now=100.0) == 10
    assert attempts.retry_after("a", now=104.5) == 6
    assert attempts.retry_after("a", now=110.0) == 0  # one more try
    attempts.failed("a", now=110.0)
    assert attempts.retry_after("a", now=110.0) == 10
    assert attempts.retry_after("b", now=110.0) == 0


def test_the_count_of_clients_is_bounded() -> None:
    attempts = FailedAttempts(burst=1, every_s=60.0, max_clients=100)
    for i in range(1000):
        attempts.failed(f"10.0.{i // 256}.{i % 256}", now=float(i))
    assert len(attempts._buckets) <= 100
    assert attempts.retry_after("10.0.3.231", now=999.0) > 0  # the newest are kept


def test_bearer_parses_the_header() -> None:
    assert bearer(b"Bearer abc.DEF-123_~+/=") == b"abc.DEF-123_~+/="
    assert bearer(None) is None and bearer(b"Bearer") is None and bearer(b"Bearerabc") is None
