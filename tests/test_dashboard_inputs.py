"""What the dashboard makes of its query strings and sign-in form: every bad value a 400 in
the one error shape naming the parameter, never a 500, and no way out of the dashboard
through `next`. In-process against a real SQLite store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shipway.errors import ConfigError
from shipway.monitoring.dashboard import Dashboard, access
from shipway.monitoring.dashboard.snapshot import Window

TOKEN = "dashboard-inputs-token"


def get(dashboard: Dashboard, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    """Each (method, path, options) request in turn, from loopback."""

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=dashboard, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
            return [await client.request(method, path, **options) for method, path, options in requests]

    return asyncio.run(calls())


@pytest.fixture
def dashboard(tmp_path: Path) -> Dashboard:
    board = Dashboard(f"sqlite:///{tmp_path / 'store.db'}", "svc")
    yield board
    board.close()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("since=nan", "since='nan'"),
        ("since=inf", "since='inf'"),
        ("since=-inf", "since='-inf'"),
        ("until=nan", "until='nan'"),
        ("since=1e308", "since='1e308'"),
        ("since=9999-12-31", "since='9999-12-31'"),
        ("since=99999999999d", "since='99999999999d'"),
        ("since=1s&step=1s", "step='1s'"),
        ("step=90s", "step='90s'"),
        ("step=30d", "step='30d'"),
        ("since=30d&step=1m", "step='1m'"),
        ("limit=-1", "limit='-1'"),
        ("limit=99999999999999999999", "limit='99999999999999999999'"),
    ],
)
@pytest.mark.parametrize("api", ["metrics", "drift", "alerts", "predictions"])
def test_a_bad_window_is_a_400_in_the_one_shape_naming_it(
    dashboard: Dashboard, api: str, query: str, named: str
) -> None:
    if query.startswith("limit") and api not in ("alerts", "predictions"):
        return  # only these take a limit
    [response] = get(dashboard, ("GET", f"/dashboard/api/{api}?{query}", {"headers": {"x-request-id": "win-1"}}))
    assert response.status_code == 400, response.text
    error = orjson.loads(response.content)["error"]
    assert set(error) == {"type", "message", "request_id"}
    assert error["type"] == "bad_request" and error["request_id"] == response.headers["x-request-id"] == "win-1"
    assert named in error["message"], error["message"]


def test_a_window_within_bounds_is_answered(dashboard: Dashboard) -> None:
    queries = ["since=1h&step=1m", "since=2024-01-01&step=7d", f"since={time.time() - 600:.0f}&step=5m"]
    for response in get(dashboard, *[("GET", f"/dashboard/api/metrics?{q}", {}) for q in queries]):
        assert response.status_code == 200, response.text


def test_a_prediction_page_with_a_ts_that_is_no_number_is_a_400(dashboard: Dashboard) -> None:
    for ts in ("nan", "inf", "x"):
        [response] = get(dashboard, ("GET", f"/dashboard/predictions/abc?ts={ts}", {}))
        assert response.status_code == 400 and f"ts=&#39;{ts}&#39;" in response.text


def test_windows_are_bounded_in_time() -> None:
    now = 1_800_000_000.0
    with pytest.raises(ConfigError, match=r"since='nan' is out of range: a time must be from 2000-01-01"):
        Window.parse("nan", now=now)
    with pytest.raises(ConfigError, match="until='2100-01-01' is out of range"):
        Window.parse("1h", "2100-01-01", now=now)
    assert Window.parse("1h", str(now + 3600), "5m", now=now).until == now + 3600  # clocks disagree a little


@pytest.mark.parametrize(
    "target",
    [
        "/dashboard\r\nset-cookie: stolen=1",
        "/dashboard\nx",
        "https://elsewhere.example/dashboard",
        "//elsewhere.example/dashboard",
        "/dashboard/../admin/rules",
        "/dashboard\\@elsewhere.example",
        "/dashboardx",
        "/dashboard/\u00e9",
        "",
    ],
)
def test_signing_in_goes_back_only_to_a_page_of_the_dashboard(
    dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.setenv(access.TOKEN_ENV, TOKEN)
    form, signed_in = get(
        dashboard,
        ("GET", "/dashboard/login", {"params": {"next": target}}),
        ("POST", "/dashboard/login", {"data": {"token": TOKEN, "next": target}}),
    )
    assert form.status_code == 200 and 'name="next" value="/dashboard"' in form.text
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"


def test_signing_in_goes_back_to_the_page_asked_for(dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(access.TOKEN_ENV, TOKEN)
    target = "/dashboard/predictions/abc?ts=1"
    [signed_in] = get(dashboard, ("POST", "/dashboard/login", {"data": {"token": TOKEN, "next": target}}))
    assert signed_in.status_code == 303 and signed_in.headers["location"] == target
