"""The endpoints that describe the service: health, readiness, metrics, OpenAPI, explain."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from time import perf_counter
from typing import Any

import orjson
from pydantic_core import from_json

from shipway.errors import PayloadError, ShipwayError
from shipway.serving.bodies import parse_one
from shipway.serving.openapi import openapi_document
from shipway.serving.responses import dumps, error_body
from shipway.serving.runtime import Runtime
from shipway.web.http import Receive, Send, read_body, send_response

__all__ = ["explain_endpoint", "health", "index", "metrics", "openapi_json", "ready"]


async def health(rt: Runtime, receive: Receive, send: Send, request_id: str) -> None:
    if rt.stuck:
        body = error_body("not_ready", rt.not_ready_reason, request_id)
        return await send_response(send, 503, body, request_id)
    await send_response(send, 200, b'{"status":"ok"}', request_id)


async def ready(rt: Runtime, receive: Receive, send: Send, request_id: str) -> None:
    if rt.ready:
        body = orjson.dumps({"ready": True, "ids": rt.ids})
        return await send_response(send, 200, body, request_id)
    body = error_body("not_ready", rt.not_ready_reason, request_id)
    await send_response(send, 503, body, request_id, [(b"retry-after", b"1")])


async def metrics(rt: Runtime, receive: Receive, send: Send, request_id: str) -> None:
    assert rt.metrics is not None
    rt.metrics.flush(rt.in_flight)  # this worker's tallies, fresh; the others' within 1 s
    if rt.log is not None:
        rt.metrics.prediction_log(rt.log.stats)  # this worker's, fresh; the others' within 1 s
    body = rt.metrics.render()
    await send_response(send, 200, body, request_id, content_type=b"text/plain; version=0.0.4")


async def openapi_json(rt: Runtime, receive: Receive, send: Send, request_id: str) -> None:
    if rt.openapi is None:
        assert rt.pipeline is not None
        doc = openapi_document(rt.pipeline, rt.name, rt.ids.get("model_version") or "")
        rt.openapi = orjson.dumps(doc)
    await send_response(send, 200, rt.openapi, request_id)


async def index(
    rt: Runtime, candidate: Callable[[], Any] | None, receive: Receive, send: Send, request_id: str
) -> None:
    """What this service is; `candidate` describes this worker's model candidate."""
    body = {"service": rt.name, "ready": rt.ready, "ids": rt.ids, "routes": sorted(rt.routes), "worker": os.getpid()}
    if candidate is not None:
        body["candidate"] = candidate()
    await send_response(send, 200, orjson.dumps(body), request_id)


async def explain_endpoint(rt: Runtime, receive: Receive, send: Send, request_id: str) -> None:
    """The trace of one input. A body {"input": ..., "expect": ..., "fields": ...} also gets
    `expect`: whether the output meets the expectation and, if not, the diagnosis."""
    started = perf_counter()
    assert rt.pipeline is not None and rt.batcher is not None
    expect: Any = None
    fields: Any = None
    try:
        body = await read_body(receive, rt.max_body)
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
        parse_one(rt.pipeline, body)  # a bad body gets the same 4xx as /predict
    except Exception as err:
        await rt.fail(send, err, request_id, "explain", started)
        return
    # The trace starts from the raw body, so its input stage shows what arrived.
    loop = asyncio.get_running_loop()
    trace = await loop.run_in_executor(rt.batcher.executor, rt.pipeline.trace, body)
    result = trace.to_dict()
    last = trace.stages[-1]
    result["request_id"] = request_id
    result["output"] = last.output if last.name == "output" and last.error is None else None
    result["error"] = next((s.error for s in trace.stages if s.error), None)
    if expect is not None:
        # Counterfactual reruns run the model, so on the predict thread like the trace.
        traced = trace.to_dict()
        result["expect"] = await loop.run_in_executor(
            rt.batcher.executor, explain, rt.pipeline, body, expect, fields, traced
        )
    await send_response(send, 200, dumps(result), request_id)
    assert rt.metrics is not None
    rt.metrics.request("explain", 200, perf_counter() - started)
