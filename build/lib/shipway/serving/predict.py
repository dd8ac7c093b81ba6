"""The prediction endpoints of App: POST /predict and POST /predict/batch, the hot path.

After the answer is sent, each answered item goes to the prediction log: the common case
(mode on, no rules, so the body sent is the model's output) straight into the log's
buffer (`PredictionLog.plain`), the rest through `logged_outputs` and `PredictionLog.add`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from time import perf_counter, time
from typing import TYPE_CHECKING, Any

import orjson

from shipway.core.decided import Decided
from shipway.core.pipeline import Pipeline
from shipway.errors import PredictTimeout
from shipway.serving.bodies import parse_items, parse_one
from shipway.serving.http import Receive, Send, read_body, send_response

if TYPE_CHECKING:
    from shipway.serving.app import App
    from shipway.store.prediction_log import PredictionLog

__all__ = ["logged_outputs", "predict", "predict_batch"]

logger = logging.getLogger("shipway.serving")


async def predict(app: App, receive: Receive, send: Send, request_id: str) -> None:
    """POST /predict: one item."""
    started = perf_counter()
    metrics = app.metrics
    assert metrics is not None and app.pipeline is not None and app.batcher is not None
    app.in_flight += 1
    output: Any = None
    try:
        body = await read_body(receive, app._max_body)
        item = parse_one(app.pipeline, body)
        if app._mode == "off":
            out = app._default_body
        else:
            output = await _wait(app, app.batcher.submit(item))
            out = app._default_body if app._mode == "shadow" else app.pipeline.render(output)
    except Exception as err:
        await app._fail(send, err, request_id, "predict", started)
        return
    finally:
        app.in_flight -= 1
    await send_response(send, 200, out, request_id)
    seconds = perf_counter() - started
    metrics.request("predict", 200, seconds)
    plain = app._log_plain
    if plain is not None and not isinstance(output, Decided):  # mode on, no rules: the body sent is the output
        plain((request_id, time(), seconds * 1000, body, out))
    elif app.log is not None:
        _log(app, app.log, request_id, seconds, body, out, output)
    if app._access_log:
        logger.info("request", extra={"endpoint": "predict", "status": 200, "ms": round(seconds * 1000, 3)})


async def predict_batch(app: App, receive: Receive, send: Send, request_id: str) -> None:
    """POST /predict/batch: a list of items, answered together."""
    started = perf_counter()
    metrics = app.metrics
    assert metrics is not None and app.pipeline is not None and app.batcher is not None
    app.in_flight += 1
    futures: list[asyncio.Future[Any]] = []
    try:
        items = parse_items(app.pipeline, await read_body(receive, app._max_body), app.batcher.max_queue)
        if app._mode == "off":
            outputs: list[Any] = [None] * len(items)
        else:
            for item in items:
                futures.append(app.batcher.submit(item))
            outputs = await _wait(app, asyncio.gather(*futures))
        if app._mode == "on":
            rendered = [app.pipeline.render(o) for o in outputs]
        else:
            rendered = [app._default_body] * len(items)
    except Exception as err:
        for future in futures:
            future.cancel()  # the batcher skips cancelled items
        await app._fail(send, err, request_id, "batch", started)
        return
    finally:
        app.in_flight -= 1
    await send_response(send, 200, b'{"items":[' + b",".join(rendered) + b"]}", request_id)
    seconds = perf_counter() - started
    metrics.request("batch", 200, seconds)
    if app.log is not None:
        dump = app.pipeline.input_schema.dump_json
        for i, (item, out, output) in enumerate(zip(items, rendered, outputs, strict=True)):
            _log(app, app.log, f"{request_id}.{i}", seconds, dump(item), out, output)


def _log(
    app: App, log: PredictionLog, request_id: str, seconds: float, inputs: bytes, answer: bytes, output: Any
) -> None:
    """Log one answered item (after its answer is sent); predict() inlines the plain case."""
    plain = app._log_plain
    if plain is not None and not isinstance(output, Decided):
        plain((request_id, time(), seconds * 1000, inputs, answer))
        return
    assert app.pipeline is not None
    outputs, decision, shadow = logged_outputs(app.pipeline, app._mode, app._mode_decision, answer, output)
    context = app._context
    if output is not None:  # the rules version that decided (none ran: None), not today's
        version = output.rules_version if isinstance(output, Decided) else None
        if version != context[2]:
            context = (context[0], context[1], version, context[3], context[4])
    log.add(context, request_id, time(), seconds * 1000, 200, inputs, outputs, decision, shadow)


async def _wait(app: App, awaitable: Awaitable[Any]) -> Any:
    future = asyncio.ensure_future(awaitable)  # a Future (or gather's), never a Task
    handle = asyncio.get_running_loop().call_later(app._timeout, _expire, future, app._timeout)
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
