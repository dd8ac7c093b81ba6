"""The prediction endpoints of App: POST /predict and POST /predict/batch, the hot path.

After the answer is sent, each answered item goes to the prediction log: the common case
(mode on, no rules, so the body sent is the model's output) straight into the log's
buffer (`PredictionLog.plain`), the rest through `logged_outputs` and `PredictionLog.add`.
Each item is logged under the version that answered it, read once when it was queued: the
live one, or in a canary the candidate for the requests in its share. In a shadow, the
candidate's share is handed to `Shadow` after the live answer is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from time import perf_counter, time
from typing import Any

import orjson

from shipway.core.decided import Decided
from shipway.core.pipeline import Pipeline
from shipway.errors import PredictTimeout
from shipway.serving.bodies import parse_items, parse_one
from shipway.serving.candidates import Shadow
from shipway.serving.runtime import Runtime, Version
from shipway.store.prediction_log import PredictionLog
from shipway.store.records import Context
from shipway.web.http import Receive, Send, read_body, send_response

__all__ = ["logged_outputs", "predict", "predict_batch"]

logger = logging.getLogger("shipway.serving")


async def predict(rt: Runtime, shadow: Shadow, receive: Receive, send: Send, request_id: str) -> None:
    """POST /predict: one item, answered by the live version or, in a canary, by the candidate."""
    started = perf_counter()
    metrics = rt.metrics
    live, batcher, candidate = rt.live, rt.batcher, rt.candidate
    assert metrics is not None and live is not None and batcher is not None
    version, context = live, rt.context  # who decides, read once: the answer is logged under it
    rt.in_flight += 1
    output: Any = None
    try:
        body = await read_body(receive, rt.max_body)
        item = parse_one(live.pipeline, body)
        if rt.mode == "off":
            out = rt.default_body
        else:
            if candidate is not None and candidate.state.mode == "canary" and candidate.sampled(request_id, item):
                version, context = candidate.version, candidate.context
            output = await _wait(rt, batcher.submit(item, version.run))
            out = rt.default_body if rt.mode == "shadow" else version.pipeline.render(output)
    except Exception as err:
        await rt.fail(send, err, request_id, "predict", started, version.model_version)
        return
    finally:
        rt.in_flight -= 1
    await send_response(send, 200, out, request_id)
    seconds = perf_counter() - started
    metrics.request("predict", 200, seconds)
    plain = rt.log_plain
    if plain is not None and version is rt.live and not isinstance(output, Decided):
        plain((request_id, time(), seconds * 1000, body, out))  # mode on, no rules: the body sent is the output
    elif rt.log is not None:
        _log(rt, rt.log, version, context, request_id, seconds, body, out, output)
    if candidate is not None and candidate.state.mode == "shadow" and candidate.sampled(request_id, item):
        shadow.offer(candidate, request_id, item, body)  # after the answer: off the request path
    elif version is not live:
        metrics.candidate(version.model_version, "canary", "answered")
    if rt.access_log:
        logger.info("request", extra={"endpoint": "predict", "status": 200, "ms": round(seconds * 1000, 3)})


async def predict_batch(rt: Runtime, shadow: Shadow, receive: Receive, send: Send, request_id: str) -> None:
    """POST /predict/batch: a list of items, answered together (a canary picks per item)."""
    started = perf_counter()
    metrics = rt.metrics
    live, batcher, candidate = rt.live, rt.batcher, rt.candidate
    assert metrics is not None and live is not None and batcher is not None
    rt.in_flight += 1
    futures: list[asyncio.Future[Any]] = []
    canary = candidate is not None and candidate.state.mode == "canary"
    try:
        items = parse_items(live.pipeline, await read_body(receive, rt.max_body), batcher.max_queue)
        versions = [live] * len(items)
        if canary and candidate is not None:
            versions = [
                candidate.version if candidate.sampled(f"{request_id}.{i}", item) else live
                for i, item in enumerate(items)
            ]
        if rt.mode == "off":
            outputs: list[Any] = [None] * len(items)
        else:
            for item, version in zip(items, versions, strict=True):
                futures.append(batcher.submit(item, version.run))
            outputs = await _wait(rt, asyncio.gather(*futures))
        if rt.mode == "on":
            rendered = [v.pipeline.render(o) for v, o in zip(versions, outputs, strict=True)]
        else:
            rendered = [rt.default_body] * len(items)
    except Exception as err:
        for future in futures:
            future.cancel()  # the batcher skips cancelled items
        await rt.fail(send, err, request_id, "batch", started)
        return
    finally:
        rt.in_flight -= 1
    await send_response(send, 200, b'{"items":[' + b",".join(rendered) + b"]}", request_id)
    seconds = perf_counter() - started
    metrics.request("batch", 200, seconds)
    dump = live.pipeline.input_schema.dump_json
    shadowing = candidate is not None and candidate.state.mode == "shadow"
    for i, (item, out, output, version) in enumerate(zip(items, rendered, outputs, versions, strict=True)):
        item_id = f"{request_id}.{i}"
        inputs = dump(item)
        if rt.log is not None:
            context = rt.context if version is live else candidate.context  # type: ignore[union-attr]
            _log(rt, rt.log, version, context, item_id, seconds, inputs, out, output)
        if shadowing and candidate is not None and candidate.sampled(item_id, item):
            shadow.offer(candidate, item_id, item, inputs)
        elif version is not live:
            metrics.candidate(version.model_version, "canary", "answered")


def _log(
    rt: Runtime,
    log: PredictionLog,
    version: Version,
    context: Context,
    request_id: str,
    seconds: float,
    inputs: bytes,
    answer: bytes,
    output: Any,
) -> None:
    """Log one answered item (after its answer is sent) under the version that decided;
    predict() inlines the plain case."""
    plain = rt.log_plain
    if plain is not None and version is rt.live and not isinstance(output, Decided):
        plain((request_id, time(), seconds * 1000, inputs, answer))
        return
    outputs, decision, shadow = logged_outputs(version.pipeline, rt.mode, rt.mode_decision, answer, output)
    if output is not None:  # the rules version that decided (none ran: None), not today's
        rules_version = output.rules_version if isinstance(output, Decided) else None
        if rules_version != context[2]:
            context = (context[0], context[1], rules_version, context[3], context[4])
    log.add(context, request_id, time(), seconds * 1000, 200, inputs, outputs, decision, shadow)


async def _wait(rt: Runtime, awaitable: Awaitable[Any]) -> Any:
    future = asyncio.ensure_future(awaitable)  # a Future (or gather's), never a Task
    handle = asyncio.get_running_loop().call_later(rt.timeout, _expire, future, rt.timeout)
    try:
        return await future
    finally:
        handle.cancel()


def _expire(future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(
            PredictTimeout(
                f"the prediction took longer than {timeout:g} s (serve.predict_timeout_s); "
                f"raise the timeout or make predict faster."
            )
        )


def logged_outputs(
    pipeline: Pipeline, mode: str, mode_decision: bytes, answer: bytes, output: Any
) -> tuple[bytes, bytes | None, bytes | None]:
    """(outputs, decision, shadow) as JSON bytes. `answer` is the body sent; `output` what
    the pipeline returned (None in mode off).

    The log keeps the model's output before any rules, so that backtests can replay rules
    over it; in modes shadow and off the decision logged is the mode's (`mode_decision`)."""
    if mode == "on":
        if not isinstance(output, Decided):
            return answer, None, None
        decision = output.decision_json or (None if output.decision is None else orjson.dumps(output.decision))
        shadow = None if output.shadow is None else orjson.dumps(output.shadow)
        return pipeline.render_model_output(output), decision, shadow
    if output is None:
        return answer, mode_decision, None
    shadow = orjson.dumps(output.decision) if isinstance(output, Decided) and output.decision is not None else None
    return pipeline.render_model_output(output), mode_decision, shadow
