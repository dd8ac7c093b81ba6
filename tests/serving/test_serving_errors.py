"""Every error of the service in the one shape, and counted: bodies that once broke the
error body or an endpoint, and an exception no endpoint expected. In-process (httpx's
ASGI transport against the App, with its real start-up, store and metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shipway.project import Project
from shipway.serving.app import App
from shipway.serving.logs import JsonFormatter
from shipway.serving.responses import error_body
from shipway.web.http import Receive, Scope, Send

BIG = 123456789012345678901234  # beyond 64 bits: orjson refuses to write it

SERVICE = """
from pydantic import BaseModel, Field


class Item(BaseModel):
    text: str = Field(min_length=1)
    n: int = 0


def predict(item: Item) -> Item:
    return item


example = Item(text="warm-up")
"""


async def _boom(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a mounted app failed on purpose")


@contextlib.asynccontextmanager
async def served(project: Path, **mounts: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The project's App started as a worker starts it, and a client that calls it in-process."""
    app = App(Project.load(project), mounts=mounts)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client
    finally:
        await app.shutdown()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "service.py").write_text(SERVICE)
    (tmp_path / "shipway.toml").write_text('name = "errors"\n')
    return tmp_path


def assert_error_shape(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = json.loads(response.content)["error"]  # the standard library keeps big integers exact
    assert set(error) <= {"type", "message", "request_id", "details"}
    assert error["type"] == kind
    assert error["request_id"] == response.headers["x-request-id"]
    return dict(error)


def counted(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text, 0 when absent."""
    wanted = {"service": "errors", **labels}
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == wanted:
            return float(match.group(2))
    return 0.0


@pytest.mark.parametrize(
    ("path", "body", "endpoint", "loc"),
    [
        ("/predict", {"text": BIG}, "predict", ["text"]),
        ("/explain", {"text": BIG}, "explain", ["text"]),
        ("/predict/batch", {"items": [{"text": "fine"}, {"text": BIG}]}, "batch", ["items", 1, "text"]),
    ],
)
def test_an_integer_beyond_64_bits_is_a_422_in_the_one_shape_and_counted(
    project: Path, path: str, body: Any, endpoint: str, loc: list[Any]
) -> None:
    async def calls() -> tuple[httpx.Response, str]:
        async with served(project) as client:
            response = await client.post(path, content=json.dumps(body), headers={"x-request-id": "big-1"})
            return response, (await client.get("/metrics")).text

    response, metrics = asyncio.run(calls())
    error = assert_error_shape(response, 422, "input_error")
    [detail] = error["details"]
    assert detail["loc"] == loc
    assert detail["input"] == BIG  # quoted exactly, as the caller sent it
    assert counted(metrics, "shipway_requests_total", endpoint=endpoint, status="422") == 1
    assert counted(metrics, "shipway_errors_total", type="input_error") == 1


def test_an_integer_beyond_64_bits_that_the_schema_takes_is_answered_exactly(project: Path) -> None:
    async def calls() -> list[httpx.Response]:
        async with served(project) as client:
            return [
                await client.post("/predict", content=json.dumps({"text": "big", "n": BIG})),
                await client.post("/predict/batch", content=json.dumps({"items": [{"text": "big", "n": BIG}]})),
                await client.post("/explain", content=json.dumps({"text": "big", "n": BIG})),
            ]

    one, batch, explained = asyncio.run(calls())
    assert one.status_code == batch.status_code == explained.status_code == 200, explained.text
    assert one.json()["n"] == batch.json()["items"][0]["n"] == explained.json()["output"]["n"] == BIG


def test_an_exception_no_endpoint_expected_is_a_500_in_the_one_shape_counted_and_logged(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def calls() -> tuple[httpx.Response, str]:
        async with served(project, **{"/boom": _boom}) as client:
            with caplog.at_level(logging.ERROR, logger="shipway.serving"):
                response = await client.get("/boom/now", headers={"x-request-id": "crash-1"})
            return response, (await client.get("/metrics")).text

    response, metrics = asyncio.run(calls())
    error = assert_error_shape(response, 500, "internal_error")
    assert "crash-1" in error["message"] and "on purpose" not in error["message"]
    assert counted(metrics, "shipway_requests_total", endpoint="other", status="500") == 1
    assert counted(metrics, "shipway_errors_total", type="internal_error") == 1
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert getattr(record, "request_id", None) == "crash-1"
    assert record.exc_info is not None and "on purpose" in str(record.exc_info[1])


def test_the_error_body_is_json_whatever_the_details_hold() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("no text")

    details = [
        {
            "loc": ["text"],
            "input": BIG,
            "lone surrogate": "\ud800",
            "keys": {1: float("nan"), (2, 3): float("inf")},
            "object": Unprintable(),
        }
    ]
    body = error_body("input_error", "bad \udfff", "rid-1", details)
    orjson.loads(body)  # orjson reads only well-formed UTF-8 JSON
    error = json.loads(body)["error"]
    assert error["request_id"] == "rid-1" and error["message"] == "bad \\udfff"
    assert error["details"] == [
        {
            "loc": ["text"],
            "input": BIG,
            "lone surrogate": "\\ud800",
            "keys": {"1": None, "(2, 3)": None},
            "object": "<Unprintable>",
        }
    ]


def test_a_log_line_is_json_whatever_the_record_holds() -> None:
    record = logging.makeLogRecord(
        {"name": "shipway.serving", "levelno": logging.ERROR, "levelname": "ERROR", "msg": "bad \udfff"}
    )
    record.count = BIG
    record.stats = {1: "x"}
    line = JsonFormatter().format(record)
    out = json.loads(line)
    assert out["msg"] == "bad \\udfff" and out["count"] == BIG and out["stats"] == {"1": "x"}
