"""The dashboard's model-candidate page and its JSON over a real SQLite store: the candidate
against the live version (agreement, disagreements with escaped example inputs)."""

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

from shipway.monitoring.dashboard import Dashboard
from shipway.registry import CandidateState, set_candidate
from shipway.store import open_store
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
