"""The dashboard's comparison pages and their JSON over a real SQLite store: the model candidate
against the live version, and the shadow rules against the live rules (agreement, disagreements
with escaped example inputs), and the report's shadow-rules section."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from store_fixtures import make_record

from shipway.monitoring.dashboard import Dashboard, Window
from shipway.monitoring.dashboard.report import build_report
from shipway.monitoring.dashboard.snapshot import Sources
from shipway.registry import CandidateState, set_candidate
from shipway.store import open_store
from shipway.store.outcomes import describe_fields, parse_feedback
from shipway.store.registry import ModelVersion
from shipway.store.version_comparison import SHADOW_SUFFIX

pytest_plugins = ["store_fixtures"]

LIVE, CAND = "live-eeee", "cand-ffff"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


class Client:
    """GETs answered by the dashboard in-process, over httpx's ASGI transport, from this machine."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, path: str) -> httpx.Response:
        async def run() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as http:
                return await http.get(path)

        return asyncio.run(run())


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    board = Dashboard(url, "svc")
    yield Client(board)
    board.close()


def test_no_candidate_says_how_to_start_one(client: Client) -> None:
    page = client.get("/dashboard/candidate")
    assert page.status_code == 200 and "shipway rollout start VERSION" in page.text
    assert client.get("/dashboard/api/candidate").json()["status"] == "none"
    assert 'href="/dashboard/candidate"' in client.get("/dashboard").text


def test_the_candidate_page_compares_it_with_the_live_version(client: Client, url: str) -> None:
    now = time.time()
    records = []
    for i in range(8):
        live = "top_up" if i % 2 else "card_lost"
        cand = "refund" if live == "top_up" else live
        text = orjson.dumps({"text": f"<script>alert({i})</script>"})
        records.append(
            make_record(
                i,
                request_id=f"r{i}",
                ts=now - 60 + i,
                model_version=LIVE,
                inputs=text,
                outputs=orjson.dumps({"intent": live}),
            )
        )
        records.append(
            make_record(
                i,
                request_id=f"r{i}{SHADOW_SUFFIX}",
                ts=now - 60 + i + 0.5,
                model_version=CAND,
                inputs=text,
                outputs=orjson.dumps({"intent": cand}),
            )
        )
    with open_store(url) as store:
        for version in (LIVE, CAND):
            store.register_model_version(ModelVersion(version, version[-4:] * 16))
        set_candidate(store, "svc", CandidateState(CAND, "shadow", 1.0, reason="trying <it>", actor="ana"))
        store.write_predictions(records)
    page = client.get("/dashboard/candidate?since=1h")
    assert page.status_code == 200, page.text
    assert CAND in page.text and LIVE in page.text and "50.0%" in page.text
    assert "trying &lt;it&gt;" in page.text and "<script>alert" not in page.text
    assert "top_up" in page.text and "refund" in page.text
    data = client.get("/dashboard/api/candidate?since=1h").json()
    assert data["state"]["version"] == CAND
    assert (data["comparison"]["paired"], data["comparison"]["agreed"]) == (8, 4)
    assert data["comparison"]["disagreements"][0]["live"] == "top_up"
    bad = client.get("/dashboard/api/candidate?since=banana")
    assert bad.status_code == 400 and "since='banana'" in bad.json()["error"]["message"]


def _decision(version: str, queue: str) -> bytes:
    return orjson.dumps(
        {"queue": queue, "review": False, "fallback": False, "set": {}, "fired": [], "rules_version": version}
    )


def _write(url: str, now: float) -> None:
    records = [
        make_record(
            i,
            ts=now - 60 + i,
            mode="on",
            rules_version="live-1",
            inputs=orjson.dumps({"text": f"<script>alert({i})</script>"}),
            outputs=orjson.dumps({"label": "card"}),
            decision=_decision("live-1", "general"),
            shadow=_decision("shadow-2", "urgent" if i % 2 else "general"),
        )
        for i in range(6)
    ]
    with open_store(url) as store:
        store.write_predictions(records)
        store.write_feedback(parse_feedback([{"request_id": "req-1", "label": "card"}]), describe_fields())


def test_no_shadow_rules_says_how_to_run_some(client: Client) -> None:
    page = client.get("/dashboard/rules")
    assert page.status_code == 200 and "shipway rules apply FILE --mode shadow" in page.text
    assert client.get("/dashboard/api/rules").json()["status"] == "none"
    assert 'href="/dashboard/rules"' in client.get("/dashboard").text


def test_the_rules_page_compares_shadow_with_live(client: Client, url: str) -> None:
    now = time.time()
    _write(url, now)
    page = client.get("/dashboard/rules?since=1h")
    assert page.status_code == 200, page.text
    assert "shadow-2" in page.text and "live-1" in page.text and "50.0%" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert 'action="/dashboard/rules"' in page.text
    data = client.get("/dashboard/api/rules?since=1h").json()
    assert data["status"] == "ok"
    found = data["comparison"]
    assert (found["compared"], found["agreed"]) == (6, 3)
    assert found["disagreements"][0] | {"examples": []} == {
        "live": "general",
        "candidate": "urgent",
        "count": 3,
        "examples": [],
    }
    assert found["outcomes"]["live"]["labelled"] == 1 and found["outcomes"]["shadow"]["correct"] == 1
    bad = client.get("/dashboard/api/rules?since=banana")
    assert bad.status_code == 400 and "since='banana'" in bad.json()["error"]["message"]


def test_the_report_has_the_shadow_rules_section(url: str) -> None:
    now = time.time()
    _write(url, now)
    with open_store(url) as store:
        html = build_report(Sources(store, "svc"), Window(now - 3600, now + 1, 60))
    assert '<section id="rules-shadow">' in html and "shadow-2" in html
    assert "<script>alert(" not in html
