"""The dashboard's Starlette app in-process, over httpx's ASGI transport and a real SQLite store:
what it refuses (in the one error shape), the headers of pages, data and assets, the sign-in's
cookie, escaping by the templates, and a page added as one route and one template."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shipway.monitoring.dashboard import Dashboard, access
from shipway.monitoring.dashboard.rendering import page

TOKEN = "dashboard-app-token"
LOCAL, REMOTE = ("127.0.0.1", 40000), ("203.0.113.9", 40000)


def calls(
    app: Any, *requests: tuple[str, str, dict[str, Any]], client: tuple[str, int] = LOCAL
) -> list[httpx.Response]:
    """Each (method, path, options) request in turn, on one client (it keeps cookies)."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as http:
            return [await http.request(method, path, **options) for method, path, options in requests]

    return asyncio.run(run())


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Dashboard]:
    dashboard = Dashboard(f"sqlite:///{tmp_path / 'store.db'}", 'svc <img src=x onerror="alert(1)">')
    yield dashboard
    dashboard.close()


def _error(response: httpx.Response) -> dict[str, Any]:
    error = orjson.loads(response.content)["error"]
    assert set(error) == {"type", "message", "request_id"} and error["request_id"] == response.headers["x-request-id"]
    return dict(error)


def test_what_the_dashboard_refuses_comes_in_the_one_error_shape(board: Dashboard) -> None:
    unknown, method, api, big, home = calls(
        board,
        ("GET", "/dashboard/nowhere", {}),
        ("POST", "/dashboard/api/metrics", {}),
        ("GET", "/dashboard/api/everything", {}),
        ("POST", "/dashboard/login", {"data": {"token": "x" * 20_000}}),
        ("GET", "/", {"follow_redirects": False}),
    )
    assert unknown.status_code == 404 and "/api/{metrics" in _error(unknown)["message"]
    assert method.status_code == 405 and _error(method)["type"] == "method_not_allowed"
    assert api.status_code == 404 and "'everything'" in _error(api)["message"]
    assert big.status_code == 413 and _error(big)["type"] == "payload_error"
    assert home.status_code == 307 and home.headers["location"] == "/dashboard"


def test_pages_data_and_assets_carry_their_headers(board: Dashboard) -> None:
    html, data, css = calls(
        board,
        ("GET", "/dashboard", {}),
        ("GET", "/dashboard/api/versions", {}),
        ("GET", "/dashboard/static/monitoring.css", {}),
    )
    assert html.status_code == 200 and "script-src 'self'" in html.headers["content-security-policy"]
    for response in (html, data):
        assert response.headers["cache-control"] == "no-store" and response.headers["x-frame-options"] == "DENY"
    assert data.json() == {"versions": []}
    assert css.status_code == 200 and "max-age" in css.headers["cache-control"] and css.headers["etag"]
    [again] = calls(
        board, ("GET", "/dashboard/static/monitoring.css", {"headers": {"if-none-match": css.headers["etag"]}})
    )
    assert again.status_code == 304
    [missing] = calls(board, ("GET", "/dashboard/static/nothing.js", {}))
    assert missing.status_code == 404


def test_the_templates_escape_every_value(board: Dashboard) -> None:
    [html] = calls(board, ("GET", "/dashboard", {"params": {"since": '24h"><script>alert(2)</script>'}}))
    assert html.status_code == 400  # not a window, and said so on a page
    [html] = calls(board, ("GET", "/dashboard", {}))
    assert "<img" not in html.text and "svc &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html.text
    [refused] = calls(board, ("GET", "/dashboard", {"params": {"since": "<b>x</b>"}}))
    assert "<b>x</b>" not in refused.text and "&lt;b&gt;x&lt;/b&gt;" in refused.text


def test_signing_in_sets_a_cookie_that_lets_the_browser_in(board: Dashboard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(access.TOKEN_ENV, TOKEN)
    form, wrong, right, inside, api = calls(
        board,
        ("GET", "/dashboard/api/metrics", {}),
        ("POST", "/dashboard/login", {"data": {"token": "guess"}}),
        ("POST", "/dashboard/login", {"data": {"token": TOKEN, "next": "/dashboard/leaderboard"}}),
        ("GET", "/dashboard", {}),
        ("GET", "/dashboard/api/versions", {}),
        client=REMOTE,
    )
    assert form.status_code == 401 and _error(form)["type"] == "unauthorized"
    assert wrong.status_code == 401 and "not the token" in wrong.text
    assert right.status_code == 303 and right.headers["location"] == "/dashboard/leaderboard"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    assert TOKEN.lower() not in cookie
    assert inside.status_code == 200 and api.status_code == 200


def test_without_a_token_only_this_machine_may_read(board: Dashboard) -> None:
    [page_] = calls(board, ("GET", "/dashboard", {}), client=REMOTE)
    [data] = calls(board, ("GET", "/dashboard/api/versions", {}), client=REMOTE)
    assert page_.status_code == 403 and access.TOKEN_ENV in page_.text and "<form" not in page_.text
    assert data.status_code == 403 and _error(data)["type"] == "forbidden"


class _WithComparison(Dashboard):
    """A page added as the docs say: one route (guarded like the others) and one template."""

    def routes(self) -> list[BaseRoute]:
        return [Route(self.prefix + "/comparison", access.guarded("html")(_comparison)), *super().routes()]


async def _comparison(request: Request) -> Response:
    return page(request, "error.html", "comparison: shipway dashboard", code="live vs candidate", message="<none yet>")


def test_a_page_is_one_route_and_one_template(tmp_path: Path) -> None:
    board = _WithComparison(f"sqlite:///{tmp_path / 'store.db'}", "svc")
    try:
        [shown] = calls(board, ("GET", "/dashboard/comparison", {}))
        [refused] = calls(board, ("GET", "/dashboard/comparison", {}), client=REMOTE)
    finally:
        board.close()
    assert shown.status_code == 200 and "live vs candidate" in shown.text and "&lt;none yet&gt;" in shown.text
    assert '<a href="/dashboard">svc</a>' in shown.text and shown.headers["content-security-policy"]
    assert refused.status_code == 403


def test_a_service_that_mounts_the_dashboard_imports_no_web_framework_until_it_is_opened(tmp_path: Path) -> None:
    # /predict stays on the hand-written ASGI path; the mounted dashboard costs it no imports.
    code = (
        "import sys, asyncio, httpx; import shipway.cli.main; from shipway.monitoring.dashboard import Dashboard\n"
        f"board = Dashboard('sqlite:///{tmp_path / 'store.db'}', 'svc')\n"
        "web = lambda: sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'jinja2', 'multipart'})\n"
        "print(web())\n"
        "async def get():\n"
        "    transport = httpx.ASGITransport(app=board, client=('127.0.0.1', 1))\n"
        "    async with httpx.AsyncClient(transport=transport, base_url='http://d') as client:\n"
        "        return (await client.get('/dashboard/api/versions')).status_code\n"
        "print(asyncio.run(get()), web())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["[]", "200 ['jinja2', 'starlette']"]
