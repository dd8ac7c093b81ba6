"""The endpoints that describe the service: health, readiness, metrics, OpenAPI, explain."""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson
from pydantic_core import from_json

from shipway.errors import PayloadError, ShipwayError
from shipway.serving.bodies import parse_one
from shipway.serving.http import Receive, Send, read_body, send_response
from shipway.serving.openapi import openapi_document
from shipway.serving.responses import dumps, error_body

if TYPE_CHECKING:
    from shipway.serving.app import App

__all__ = ["explain_endpoint", "health", "index", "metrics", "openapi_json", "ready"]


async def health(app: App, receive: Receive, send: Send, request_id: str) -> None:
    if app.stuck:
        body = error_body("not_ready", app.not_ready_reason, request_id)
        return await send_response(send, 503, body, request_id)
    await send_response(send, 200, b'{"status":"ok"}', request_id)


async def ready(app: App, receive: Receive, send: Send, request_id: str) -> None:
    if app.ready:
        body = orjson.dumps({"ready": True, "ids": app.ids})
        return await send_response(send, 200, body, request_id)
    body = error_body("not_ready", app.not_ready_reason, request_id)
    await send_response(send, 503, body, request_id, [(b"retry-after", b"1")])


async def metrics(app: App, receive: Receive, send: Send, request_id: str) -> None:
    assert app.metrics is not None
    app.metrics.flush(app.in_flight)  # this worker's tallies, fresh; the others' within 1 s
    if app.log is not None:
        app.metrics.prediction_log(app.log.stats)  # this worker's, fresh; the others' within 1 s
    body = app.metrics.render()
    await send_response(send, 200, body, request_id, content_type=b"text/plain; version=0.0.4")


async def openapi_json(app: App, receive: Receive, send: Send, request_id: str) -> None:
    if app._openapi is None:
        assert app.pipeline is not None
        doc = openapi_document(app.pipeline, app.name, app.ids.get("model_version") or "")
        app._openapi = orjson.dumps(doc)
    await send_response(send, 200, app._openapi, request_id)


async def index(app: App, receive: Receive, send: Send, request_id: str) -> None:
    body = {"service": app.name, "ready": app.ready, "ids": app.ids, "routes": sorted(app._routes)}
    await send_response(send, 200, orjson.dumps(body), request_id)


async def explain_endpoint(app: App, receive: Receive, send: Send, request_id: str) -> None:
    """The trace of one input. A body {"input": ..., "expect": ..., "fields": ...} also gets
    `expect`: whether the output meets the expectation and, if not, the diagnosis."""
    started = perf_counter()
    assert app.pipeline is not None and app.batcher is not None
    expect: Any = None
    fields: Any = None
    try:
        body = await read_body(receive, app._max_body)
        try:
            envelope = from_json(body) if b'"expect"' in body else None
        except ValueError:
            envelope = None  # _parse below answers it as /predict would
        if isinstance(envelope, dict) and {"input", "expect"} <= envelope.keys() <= {"input", "expect", "fields"}:
            # Imported here: only an explain with an expectation needs the validation package.
            from shipway.expect.explain import explain, parse_expect

            expect, fields = envelope["expect"], envelope.get("fields")
            try:
                parse_expect(expect, fields)
            except ShipwayError as err:
                raise PayloadError(f"the expectation is not valid: {err}") from None
            body = dumps(envelope["input"])
        parse_one(app.pipeline, body)  # a bad body gets the same 4xx as /predict
    except Exception as err:
        await app._fail(send, err, request_id, "explain", started)
        return
    # The trace starts from the raw body, so its input stage shows what arrived.
    loop = asyncio.get_running_loop()
    trace = await loop.run_in_executor(app.batcher.executor, app.pipeline.trace, body)
    result = trace.to_dict()
    last = trace.stages[-1]
    result["request_id"] = request_id
    result["output"] = last.output if last.name == "output" and last.error is None else None
    result["error"] = next((s.error for s in trace.stages if s.error), None)
    if expect is not None:
        # Counterfactual reruns run the model, so on the predict thread like the trace.
        traced = trace.to_dict()
        result["expect"] = await loop.run_in_executor(
            app.batcher.executor, explain, app.pipeline, body, expect, fields, traced
        )
    await send_response(send, 200, dumps(result), request_id)
    assert app.metrics is not None
    app.metrics.request("explain", 200, perf_counter() - started)
