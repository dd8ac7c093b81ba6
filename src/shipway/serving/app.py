"""The HTTP service: a small ASGI app around one pipeline.

Routes: POST /predict, POST /predict/batch, POST /explain, GET /health,
GET /ready, GET /metrics, GET /openapi.json and GET / (what this service is).
It is plain ASGI rather than a framework because the request path is the
product's hot path: see docs/benchmarks.md for what that buys.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import orjson

from shipway.core.pipeline import Decided, Pipeline
from shipway.core.service import Service, read_ids
from shipway.core.settings import Settings
from shipway.errors import ConfigError, InputError, PayloadError, PredictError, PredictTimeout, ShipwayError
from shipway.serving.batching import Batcher
from shipway.serving.logs import request_id_var
from shipway.serving.metrics import Metrics
from shipway.serving.openapi import openapi_document
from shipway.serving.responses import error_body, error_for
from shipway.store.prediction_log import PredictionLog
from shipway.store.records import PredictionRecord

__all__ = ["App"]

logger = logging.getLogger("shipway.serving")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"


class App:
    """One service behind HTTP. `preload()` loads the model; ASGI lifespan does the rest."""

    def __init__(self, service: Service, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.name: str = settings["name"]
        self.pipeline: Pipeline | None = None
        self.ids: dict[str, str | None] = {}
        self.ready = False
        self.stuck = False
        self.not_ready_reason = "starting: the model is not loaded yet"
        self.metrics: Metrics | None = None
        self.batcher: Batcher | None = None
        self.log: PredictionLog | None = None
        self._openapi: bytes | None = None
        self._max_body: int = settings["serve.max_body_bytes"]
        self._timeout: float = settings["serve.predict_timeout_s"]
        self._access_log: bool = settings["serve.access_log"]
        self._mode: str = settings["mode"]
        # What modes off and shadow answer, and log as the decision taken.
        self._default_body = b""
        self._mode_decision = orjson.dumps({"mode": self._mode, "answer": "default"})
        self._routes: dict[str, tuple[str, Callable[..., Awaitable[None]]]] = {
            "/predict": ("POST", self._predict),
            "/predict/batch": ("POST", self._predict_batch),
            "/explain": ("POST", self._explain),
            "/health": ("GET", self._health),
            "/ready": ("GET", self._ready),
            "/metrics": ("GET", self._metrics),
            "/openapi.json": ("GET", self._openapi_json),
            "/": ("GET", self._index),
        }

    # -- lifecycle -------------------------------------------------------------

    def preload(self) -> None:
        """Load the model and build the pipeline (in the parent, before fork, by default)."""
        if self.pipeline is not None:
            return
        artifacts = self.settings.path("artifacts")
        self.ids = {
            "service": self.name,
            **read_ids(artifacts, self.settings["version"] or None),
            "rules_version": None,
        }
        self.pipeline = self.service.setup(artifacts, self.ids)
        if self._mode != "on":
            if not self.service.has_default:
                raise ConfigError(
                    f"mode {self._mode!r} answers every request with `default` from service.py, which it "
                    f'does not define; add `default = <an instance of the output type>` or set mode = "on".'
                )
            self._default_body = self.pipeline.render(self.pipeline.output_schema.validate(self.service.default))

    async def startup(self) -> None:
        if self.pipeline is None:
            await asyncio.to_thread(self.preload)
        assert self.pipeline is not None
        s = self.settings
        self.metrics = Metrics(self.name)
        self.batcher = Batcher(
            self.pipeline.run_items,
            max_batch_size=s["batching.max_batch_size"] if self.service.has_batch else 1_000_000,
            # Without a batch form there is nothing to gain by waiting for company.
            max_wait_s=s["batching.max_wait_ms"] / 1000 if self.service.has_batch else 0.0,
            max_queue_wait_s=s["batching.max_queue_wait_ms"] / 1000,
            max_queue=s["batching.max_queue"],
            on_batch=self.metrics.batch,
        )
        await self.batcher.start()
        if s["log.enabled"]:
            self.log = PredictionLog(
                s["store.url"],
                base_dir=s.root,
                flush_interval_s=s["log.flush_interval_s"],
                spool_dir=s.path("log.spool_dir"),
                sample_rate=s["log.sample_rate"],
                redact=self.service.redact,
            )
            self.log.start()
        loop = asyncio.get_running_loop()
        self._warmup_task = loop.create_task(self._warm_up())
        self._watch_task = loop.create_task(self._watch())

    async def shutdown(self) -> None:
        """Finish queued predictions, then write every logged record."""
        self.ready = False
        self.not_ready_reason = "shutting down"
        self._watch_task.cancel()
        if self.batcher is not None:
            await self.batcher.stop(timeout=self.settings["serve.graceful_timeout_s"])
        if self.log is not None:
            await asyncio.to_thread(self.log.close)
        logger.info("worker stopped", extra={"log": self.log.stats if self.log else None})
        if self.stuck:
            # The stuck predict thread cannot be joined; everything else is flushed.
            os._exit(3)

    async def _watch(self) -> None:
        """Once a second: export the prediction log's counts, and give up on a stuck predict.

        A predict that has run for twice its timeout (plus 5 s) holds this worker's only
        predict thread, so every later request would time out: the worker reports itself
        unhealthy and stops, and the supervisor starts a fresh one.
        """
        assert self.batcher is not None and self.metrics is not None
        limit = 2 * self._timeout + 5
        while True:
            await asyncio.sleep(1.0)
            if self.log is not None:
                self.metrics.prediction_log(self.log.stats)
            since = self.batcher.running_since
            if since is not None and perf_counter() - since > limit and not self.stuck:
                self.stuck = True
                self.ready = False
                self.not_ready_reason = f"predict has been running for over {limit:g} s; this worker is restarting"
                logger.error("predict is stuck; stopping this worker so that it is replaced", extra={"seconds": limit})
                os.kill(os.getpid(), signal.SIGTERM)

    async def _warm_up(self) -> None:
        assert self.pipeline is not None and self.batcher is not None
        example = self._example()
        if example is _NONE:
            logger.warning(
                "no warm-up input: define `example = ...` in service.py so readiness "
                "waits for a real prediction; ready after load only"
            )
        else:
            try:
                await self.batcher.submit(self.pipeline.parse(example))
            except Exception as err:
                if self.service.has_example:
                    self.not_ready_reason = f"the warm-up prediction on `example` failed: {err}"
                    logger.error("warm-up prediction failed; not ready", exc_info=err)
                    return
                # A guessed input the model rejects says nothing about the model.
                logger.warning(
                    "the guessed warm-up input %r failed (%s); define `example = ...` in "
                    "service.py so readiness waits for a real prediction; ready after load only",
                    example,
                    err,
                )
        self.ready = True
        self.not_ready_reason = ""
        logger.info("ready", extra={"ids": self.ids})

    def _example(self) -> Any:
        assert self.pipeline is not None
        if self.service.has_example:
            return self.service.example
        candidates: tuple[Any, ...] = ({}, "warm-up", [], 0)
        for candidate in candidates:
            try:
                self.pipeline.parse(candidate)
                return candidate
            except ShipwayError:
                continue
        return _NONE

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as err:
                    logger.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(err)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = None
        length = -1
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = _clean_id(value)
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
        if request_id is None:
            request_id = os.urandom(12).hex()
        route = self._routes.get(scope["path"])
        if route is None:
            body = error_body(
                "not_found", f"no route {scope['path']!r}; the routes are {', '.join(self._routes)}", request_id
            )
            return await self._refuse(send, 404, "not_found", body, request_id)
        if scope["method"] != route[0]:
            body = error_body(
                "method_not_allowed", f"{scope['path']} takes {route[0]}, not {scope['method']}", request_id
            )
            allow = [(b"allow", route[0].encode())]
            return await self._refuse(send, 405, "method_not_allowed", body, request_id, allow)
        if length > self._max_body:
            body = error_body("payload_error", self._too_large(length), request_id)
            return await self._refuse(send, 413, "payload_error", body, request_id)
        token = request_id_var.set(request_id)
        try:
            await route[1](receive, send, request_id)
        finally:
            request_id_var.reset(token)

    # -- prediction endpoints --------------------------------------------------

    async def _predict(self, receive: Receive, send: Send, request_id: str) -> None:
        started = perf_counter()
        metrics = self.metrics
        assert metrics is not None and self.pipeline is not None and self.batcher is not None
        metrics.in_flight_child.inc()
        output: Any = None
        try:
            body = await self._body(receive)
            item = self._parse(body)
            if self._mode == "off":
                out = self._default_body
            else:
                output = await self._wait(self.batcher.submit(item))
                out = self._default_body if self._mode == "shadow" else self.pipeline.render(output)
        except Exception as err:
            await self._fail(send, err, request_id, "predict", started)
            return
        finally:
            metrics.in_flight_child.dec()
        await _send(send, 200, out, request_id)
        seconds = perf_counter() - started
        metrics.request("predict", 200, seconds)
        if self.log is not None:
            self.log.append(self._record(request_id, seconds, body, out, output))
        if self._access_log:
            logger.info("request", extra={"endpoint": "predict", "status": 200, "ms": round(seconds * 1000, 3)})

    async def _predict_batch(self, receive: Receive, send: Send, request_id: str) -> None:
        started = perf_counter()
        metrics = self.metrics
        assert metrics is not None and self.pipeline is not None and self.batcher is not None
        metrics.in_flight_child.inc()
        futures: list[asyncio.Future[Any]] = []
        try:
            items = self._parse_items(await self._body(receive))
            if self._mode == "off":
                outputs: list[Any] = [None] * len(items)
            else:
                for item in items:
                    futures.append(self.batcher.submit(item))
                outputs = await self._wait(asyncio.gather(*futures))
            if self._mode == "on":
                rendered = [self.pipeline.render(o) for o in outputs]
            else:
                rendered = [self._default_body] * len(items)
        except Exception as err:
            for future in futures:
                future.cancel()  # the batcher skips cancelled items
            await self._fail(send, err, request_id, "batch", started)
            return
        finally:
            metrics.in_flight_child.dec()
        await _send(send, 200, b'{"items":[' + b",".join(rendered) + b"]}", request_id)
        seconds = perf_counter() - started
        metrics.request("batch", 200, seconds)
        if self.log is not None:
            dump = self.pipeline.input_schema.dump_json
            for i, (item, out, output) in enumerate(zip(items, rendered, outputs, strict=True)):
                self.log.append(self._record(f"{request_id}.{i}", seconds, dump(item), out, output))

    async def _explain(self, receive: Receive, send: Send, request_id: str) -> None:
        started = perf_counter()
        assert self.pipeline is not None and self.batcher is not None
        try:
            body = await self._body(receive)
            self._parse(body)  # a bad body gets the same 4xx as /predict
        except Exception as err:
            await self._fail(send, err, request_id, "explain", started)
            return
        # The trace starts from the raw body, so its input stage shows what arrived.
        trace = await asyncio.get_running_loop().run_in_executor(self.batcher.executor, self.pipeline.trace, body)
        result = trace.to_dict()
        last = trace.stages[-1]
        result["request_id"] = request_id
        result["output"] = last.output if last.name == "output" and last.error is None else None
        result["error"] = next((s.error for s in trace.stages if s.error), None)
        await _send(send, 200, orjson.dumps(result, default=str), request_id)
        assert self.metrics is not None
        self.metrics.request("explain", 200, perf_counter() - started)

    def _record(self, request_id: str, seconds: float, inputs: bytes, answer: bytes, output: Any) -> PredictionRecord:
        """The log record of one answered item. `answer` is the body sent; `output` what
        the pipeline returned (None in mode off). The log keeps the model's output before
        any rules, so that backtests can replay rules over it."""
        ids = self.ids
        outputs, decision, shadow = answer, None, None
        if self._mode != "on":
            decision = self._mode_decision
            if output is not None:
                assert self.pipeline is not None
                outputs = self.pipeline.render_model_output(output)
                if isinstance(output, Decided):
                    shadow = orjson.dumps(output.decision)
        elif isinstance(output, Decided):
            assert self.pipeline is not None
            outputs = self.pipeline.render_model_output(output)
            decision = orjson.dumps(output.decision)
            shadow = None if output.shadow is None else orjson.dumps(output.shadow)
        return PredictionRecord(
            request_id=request_id,
            ts=time.time(),
            service=self.name,
            model_version=ids["model_version"] or "",
            latency_ms=seconds * 1000,
            inputs=inputs,
            outputs=outputs,
            decision=decision,
            shadow=shadow,
            rules_version=ids.get("rules_version"),
            dataset_version=ids.get("dataset_version"),
            run_id=ids.get("run_id"),
        )

    # -- other endpoints -------------------------------------------------------

    async def _health(self, receive: Receive, send: Send, request_id: str) -> None:
        if self.stuck:
            body = error_body("not_ready", self.not_ready_reason, request_id)
            return await _send(send, 503, body, request_id)
        await _send(send, 200, b'{"status":"ok"}', request_id)

    async def _ready(self, receive: Receive, send: Send, request_id: str) -> None:
        if self.ready:
            body = orjson.dumps({"ready": True, "ids": self.ids})
            return await _send(send, 200, body, request_id)
        body = error_body("not_ready", self.not_ready_reason, request_id)
        await _send(send, 503, body, request_id, [(b"retry-after", b"1")])

    async def _metrics(self, receive: Receive, send: Send, request_id: str) -> None:
        assert self.metrics is not None
        if self.log is not None:
            self.metrics.prediction_log(self.log.stats)  # this worker's, fresh; the others' within 1 s
        await _send(send, 200, self.metrics.render(), request_id, content_type=b"text/plain; version=0.0.4")

    async def _openapi_json(self, receive: Receive, send: Send, request_id: str) -> None:
        if self._openapi is None:
            assert self.pipeline is not None
            doc = openapi_document(self.pipeline, self.name, self.ids.get("model_version") or "")
            self._openapi = orjson.dumps(doc)
        await _send(send, 200, self._openapi, request_id)

    async def _index(self, receive: Receive, send: Send, request_id: str) -> None:
        body = {"service": self.name, "ready": self.ready, "ids": self.ids, "routes": sorted(self._routes)}
        await _send(send, 200, orjson.dumps(body), request_id)

    # -- helpers ---------------------------------------------------------------

    async def _body(self, receive: Receive) -> bytes:
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > self._max_body:
                raise PayloadError(self._too_large(len(body)), status=413)
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise PayloadError(self._too_large(size), status=413)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int) -> str:
        return (
            f"the body is {size} bytes, over the {self._max_body}-byte limit; send a smaller body, "
            f"split it over several requests, or raise serve.max_body_bytes."
        )

    def _parse(self, body: bytes) -> Any:
        assert self.pipeline is not None
        try:
            return self.pipeline.input_schema.validate_json(body)
        except InputError as err:
            if err.details and err.details[0]["type"] == "json_invalid":
                raise PayloadError(
                    f"the body is not valid JSON ({err.details[0]['msg']}); send a JSON document "
                    f"with content-type application/json."
                ) from None
            raise

    def _parse_items(self, body: bytes) -> list[Any]:
        assert self.pipeline is not None and self.batcher is not None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise PayloadError(f'the body is not valid JSON ({err}); send {{"items": [...]}}.') from None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise PayloadError(
                f'/predict/batch takes {{"items": [item, ...]}}; got a {type(data).__name__} '
                f"{'without an items list' if isinstance(data, dict) else ''}".rstrip()
                + "."
            )
        if len(items) > self.batcher.max_queue:
            raise PayloadError(
                f"{len(items)} items is more than one request may hold ({self.batcher.max_queue}); split it."
            )
        parsed: list[Any] = []
        details: list[dict[str, Any]] = []
        validate = self.pipeline.input_schema.validate
        for i, item in enumerate(items):
            try:
                parsed.append(validate(item))
            except InputError as err:
                details.extend({**d, "loc": ["items", i, *d["loc"]]} for d in err.details)
        if details:
            where = ".".join(str(p) for p in details[0]["loc"])
            raise InputError(
                f"{len(details)} problem(s) in the items; the first: {where}: {details[0]['msg']}", details
            )
        return parsed

    async def _wait(self, awaitable: Awaitable[Any]) -> Any:
        future = asyncio.ensure_future(awaitable)  # a Future (or gather's), never a Task
        handle = asyncio.get_running_loop().call_later(self._timeout, _expire, future, self._timeout)
        try:
            return await future
        finally:
            handle.cancel()

    async def _refuse(
        self,
        send: Send,
        status: int,
        kind: str,
        body: bytes,
        request_id: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        if self.metrics is not None:
            self.metrics.request("other", status)
            self.metrics.error(kind)
        await _send(send, status, body, request_id, headers)

    async def _fail(self, send: Send, err: BaseException, request_id: str, endpoint: str, started: float) -> None:
        status, body, headers = error_for(err, request_id)
        assert self.metrics is not None
        self.metrics.request(endpoint, status, perf_counter() - started)
        self.metrics.error(orjson.loads(body)["error"]["type"])
        if status >= 500:
            cause = err.cause if isinstance(err, PredictError) else err
            level = logging.ERROR if status == 500 else logging.WARNING
            logger.log(
                level,
                f"{endpoint} failed: {err}",
                exc_info=(type(cause), cause, cause.__traceback__) if status == 500 else None,
                extra={"status": status},
            )
        await _send(send, status, body, request_id, headers)


_NONE = object()


def _expire(future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(
            PredictTimeout(
                f"the prediction took longer than {timeout:g} s (serve.predict_timeout_s); "
                f"raise the timeout or make predict faster."
            )
        )


def _clean_id(value: bytes) -> str | None:
    # Echo the caller's id only when it is short and printable; it goes into logs and headers.
    if 0 < len(value) <= 200 and value.isascii():
        text = value.decode()
        if text.isprintable() and " " not in text:
            return text
    return None


async def _send(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = JSON,
) -> None:
    start_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if headers:
        start_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})
