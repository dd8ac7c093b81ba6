"""The HTTP service: a small ASGI app around one pipeline.

Routes: POST /predict, POST /predict/batch, POST /explain, GET /health,
GET /ready, GET /metrics, GET /openapi.json, GET / (what this service is),
and the admin routes /admin/rules and /admin/rules/rollback. It is plain ASGI
rather than a framework because the request path is the product's hot path:
see docs/benchmarks.md for what that buys.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any

import orjson

from shipway.core.artifacts import deployable
from shipway.core.gate import Gate
from shipway.core.pipeline import Pipeline
from shipway.core.service import Service, read_ids
from shipway.core.settings import Settings
from shipway.errors import ConfigError, GateFailed, PredictError
from shipway.rules import Decision, RuleSet
from shipway.rules.live import Active, rules_stage, with_rules
from shipway.serving import introspection
from shipway.serving.admin import admin
from shipway.serving.batching import Batcher
from shipway.serving.decisions import RulesManager, labels_from_manifest
from shipway.serving.feedback import FeedbackWriter, feedback_endpoint
from shipway.serving.http import Receive, Scope, Send, request_headers, send_response, too_large
from shipway.serving.jobs import Job, Jobs
from shipway.serving.logs import request_id_var
from shipway.serving.metrics import Metrics
from shipway.serving.models import ModelManager
from shipway.serving.predict import predict, predict_batch
from shipway.serving.responses import error_body, error_for
from shipway.serving.warmup import warm_up
from shipway.store.prediction_log import PredictionLog
from shipway.store.records import Context
from shipway.tokens import FailedAttempts

__all__ = ["App"]

logger = logging.getLogger("shipway.serving")

_STUCK_EXIT = 70  # EX_SOFTWARE
Handler = Callable[[Receive, Send, str], Awaitable[None]]
# The endpoint label of the metrics, by path, for an error answered outside the endpoint's own code.
_ENDPOINTS = {"/predict": "predict", "/predict/batch": "batch", "/explain": "explain", "/feedback": "feedback"}
Mounted = Callable[[Scope, Receive, Send], Awaitable[None]]  # an ASGI app


class App:
    """One service behind HTTP. `preload()` loads the model; ASGI lifespan does the rest."""

    def __init__(
        self,
        service: Service,
        settings: Settings,
        gate: Gate | None = None,
        jobs: Sequence[Job] = (),
        mounts: Mapping[str, Mounted] | None = None,
    ) -> None:
        self.service = service
        self.gate = gate
        self.jobs = Jobs(jobs)  # background callables from the CLI layer, run in each worker
        # ASGI apps from the CLI layer by path prefix (the dashboard at /dashboard). Each request
        # under a prefix goes to its app with "shipway.trace" in the scope (an async function
        # from a request body to the trace of the live pipeline, for apps that show traces) and
        # "shipway.request_id"; an exception it raises is answered and counted here.
        self.mounts = dict(mounts or {})
        self.settings = settings
        self.name: str = settings["name"]
        self.pipeline: Pipeline | None = None
        self.rules: RulesManager | None = None
        self.in_flight = 0  # published to the metrics once a second
        self.models = ModelManager(self)
        self.ids: dict[str, str | None] = {}
        self._context: Context = (self.name, "", None, None, None)  # what the log's entries share
        self.ready = False
        self.stuck = False
        self.not_ready_reason = "starting: the model is not loaded yet"
        self.metrics: Metrics | None = None
        self.batcher: Batcher | None = None
        self.log: PredictionLog | None = None
        # The log's way in for a plain entry (mode on, no rules); refreshed by _plain_log().
        self._log_plain: Callable[[tuple[str, float, float, bytes, bytes]], None] | None = None
        self._openapi: bytes | None = None
        self._max_body: int = settings["serve.max_body_bytes"]
        self._timeout: float = settings["serve.predict_timeout_s"]
        self._access_log: bool = settings["serve.access_log"]
        self._mode: str = settings["mode"]
        # What modes off and shadow answer, and log as the decision taken.
        self._default_body = b""
        self._mode_decision = orjson.dumps({"mode": self._mode, "answer": "default"})
        self._routes: dict[str, dict[str, Handler]] = {
            "/predict": {"POST": partial(predict, self)},
            "/predict/batch": {"POST": partial(predict_batch, self)},
            "/explain": {"POST": partial(introspection.explain_endpoint, self)},
            "/health": {"GET": partial(introspection.health, self)},
            "/ready": {"GET": partial(introspection.ready, self)},
            "/metrics": {"GET": partial(introspection.metrics, self)},
            "/openapi.json": {"GET": partial(introspection.openapi_json, self)},
            "/": {"GET": partial(introspection.index, self)},
        }
        # Routes that read the Authorization header themselves: feedback and the admin operations.
        self._guarded_routes: dict[tuple[str, str], Callable[..., Awaitable[None]]] = {
            ("/feedback", "POST"): feedback_endpoint,
            **{
                route: partial(admin, action=action)
                for route, action in (
                    (("/admin/rules", "GET"), "history"),
                    (("/admin/rules", "POST"), "apply"),
                    (("/admin/rules/rollback", "POST"), "rollback"),
                    (("/admin/model", "GET"), "model_history"),
                    (("/admin/model", "POST"), "deploy"),
                )
            },
        }
        self.feedback = FeedbackWriter(settings)
        self.attempts = FailedAttempts()  # wrong tokens per client, for the guarded routes

    # -- lifecycle -------------------------------------------------------------

    def preload(self) -> None:
        """Load the model, build the pipeline and check the rules (in the parent, before fork)."""
        if self.pipeline is not None:
            return
        artifacts = self.settings.path("artifacts")
        deployed = self.models.newest()  # a restart serves the newest deployed model
        self.models.close()  # no connection may cross the fork
        if deployed is not None and Path(deployed.source).is_dir():
            artifacts = deployable(deployed.source, self.settings)
            self.models.applied = deployed.id
        self.ids = {
            "service": self.name,
            **read_ids(artifacts, self.settings["version"] or None),
            "rules_version": None,
        }
        pipeline = self.service.setup(artifacts, self.ids)
        self.rules = RulesManager(
            self.settings,
            self.name,
            (pipeline.input_schema, pipeline.output_schema),
            labels=labels_from_manifest(artifacts),
            on_decision=self._count_decision,
            on_swap=self._rules_swapped,
        )
        pipeline.stages.append(rules_stage(self.rules.live))
        if self.gate is not None:
            self.rules.gate = self._gate_rules
        self.rules.preload()
        pipeline.ids["rules_version"] = self.ids["rules_version"]
        self.update_ids({})
        self.pipeline = pipeline
        if self._mode != "on":
            if not self.service.has_default:
                raise ConfigError(
                    f"mode {self._mode!r} answers every request with `default` from service.py, which it "
                    f'does not define; add `default = <an instance of the output type>` or set mode = "on".'
                )
            self._default_body = pipeline.render(pipeline.output_schema.validate(self.service.default))
        # Everything loaded so far lives as long as the process: move it out of the collector's
        # reach. Full collections then skip the model's objects (banking77 under load: 1.3 s of
        # every 8 s in the collector before, 0.4 s after), and workers forked from here do not
        # write to the parent's pages when they collect (the gc.freeze documentation).
        gc.freeze()

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
            inline=s["batching.inline"],
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
            self._plain_log()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(warm_up(self)),
            loop.create_task(self._watch()),
            loop.create_task(self._sync_rules()),
        ]
        self.jobs.start()

    async def shutdown(self) -> None:
        """Finish queued predictions, then write every logged record."""
        self.ready = False
        self.not_ready_reason = "shutting down"
        for task in self._tasks:
            task.cancel()
        await asyncio.to_thread(self.jobs.stop)
        if self.batcher is not None:
            # Behind a stuck predict nothing queued can run: waiting for it only delays the restart.
            await self.batcher.stop(timeout=0 if self.stuck else self.settings["serve.graceful_timeout_s"])
        if self.log is not None:
            self._log_plain = None  # a request that races the close goes through add(), which counts it
            await asyncio.to_thread(self.log.close)
        if self.rules is not None:
            self.rules.close()
        self.models.close()
        await asyncio.to_thread(self.feedback.close)
        for mounted in self.mounts.values():
            close = getattr(mounted, "close", None)  # a mounted app may hold a store connection
            if close is not None:
                await asyncio.to_thread(close)
        logger.info("worker stopped", extra={"log": self.log.stats if self.log else None})
        if self.stuck:
            # The stuck predict thread cannot be joined; everything else is flushed. Not 3 or 4:
            # gunicorn's arbiter reads those as a worker that failed to boot and stops the server.
            os._exit(_STUCK_EXIT)

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
            self.metrics.flush(self.in_flight)
            if self.log is not None:
                self._plain_log()
                self.metrics.prediction_log(self.log.stats)
            since = self.batcher.running_since
            if since is not None and perf_counter() - since > limit and not self.stuck:
                self.stuck = True
                self.ready = False
                self.not_ready_reason = f"predict has been running for over {limit:g} s; this worker is restarting"
                logger.error("predict is stuck; stopping this worker so that it is replaced", extra={"seconds": limit})
                os.kill(os.getpid(), signal.SIGTERM)

    async def _sync_rules(self) -> None:
        """Pick up rules applied through any worker or replica, or a changed rules file."""
        assert self.rules is not None
        while True:
            try:
                await asyncio.to_thread(self.rules.sync)
            except Exception:
                logger.exception("rules sync failed; the current rules keep serving")
            try:
                await asyncio.to_thread(self.models.sync)
            except Exception:
                logger.exception("model sync failed; the current model keeps serving")
            await asyncio.sleep(self.settings["rules.poll_s"])

    def _gate_rules(self, ruleset: RuleSet) -> None:
        """Run the gate against the live pipeline with `ruleset` as its rules; GateFailed refuses them."""
        assert self.pipeline is not None and self.gate is not None
        candidate = with_rules(self.pipeline, ruleset)
        gate = self.gate
        # On the predict thread: the model need not be thread-safe, and predictions wait briefly.
        executor = self.batcher.executor if self.batcher is not None else None
        result = executor.submit(gate, candidate).result() if executor is not None else gate(candidate)
        if not result.ok:
            raise GateFailed(f"rules {ruleset.version} refused by the validation gate: {result.summary}", result.report)

    def update_ids(self, changes: dict[str, str | None]) -> None:
        """Change the versions the service reports and logs (a new model, new rules)."""
        ids = self.ids
        ids.update(changes)
        self._context = (
            self.name,
            ids["model_version"] or "",
            ids.get("rules_version"),
            ids.get("dataset_version"),
            ids.get("run_id"),
        )
        self._plain_log()

    def _plain_log(self) -> None:
        """Ask the log again for its way in for plain entries: for the current context, and
        None while the log wants every entry through add() (a full buffer, say)."""
        log = self.log
        # With live rules, answers are decided: one the rules did not see (answered across a
        # switch from none) goes through add(), under no rules version.
        plain = log is not None and self._mode == "on" and self._context[2] is None
        self._log_plain = log.plain(self._context) if plain and log is not None else None

    def _rules_swapped(self, active: Active) -> None:
        self.update_ids({"rules_version": active.versions[0]})
        if self.pipeline is not None:
            self.pipeline.ids["rules_version"] = active.versions[0]  # traces carry it too

    def _count_decision(self, decision: Decision) -> None:
        if self.metrics is not None:
            self.metrics.decision(decision.queue, decision.fired, decision.rules_version)

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
        request_id, length, authorization = request_headers(scope)
        path, method = scope["path"], scope["method"]
        if length > self._max_body:
            body = error_body("payload_error", too_large(length, self._max_body), request_id)
            return await self._refuse(send, 413, "payload_error", body, request_id)
        token = request_id_var.set(request_id)
        try:
            methods = self._routes.get(path)
            if methods is not None and method in methods:
                return await methods[method](receive, send, request_id)
            for prefix, mounted in self.mounts.items():  # after the routes: predictions never loop here
                if path == prefix or path.startswith(prefix + "/"):
                    scope = {**scope, "shipway.trace": self.trace_body, "shipway.request_id": request_id}
                    return await mounted(scope, receive, send)
            guarded = self._guarded_routes.get((path, method))
            if guarded is not None:
                client = scope.get("client")
                return await guarded(self, receive, send, request_id, authorization, str(client[0]) if client else "")
            allowed = sorted(methods or {m for (p, m) in self._guarded_routes if p == path})
            if allowed:
                body = error_body("method_not_allowed", f"{path} takes {', '.join(allowed)}, not {method}", request_id)
                allow = [(b"allow", ", ".join(allowed).encode())]
                return await self._refuse(send, 405, "method_not_allowed", body, request_id, allow)
            routes = ", ".join([*self._routes, *dict.fromkeys(p for p, _ in self._guarded_routes), *self.mounts])
            body = error_body("not_found", f"no route {path!r}; the routes are {routes}", request_id)
            return await self._refuse(send, 404, "not_found", body, request_id)
        except Exception as err:  # a bug of ours: still the one shape, counted, logged with the request id
            await self._crash(send, err, request_id, path)
        finally:
            request_id_var.reset(token)

    async def _crash(self, send: Send, err: Exception, request_id: str, path: str) -> None:
        """An exception no endpoint handled: logged with its traceback, counted, and answered as
        the generic 500 unless the answer had already started."""
        logger.error(f"{path} failed: {err!r}", exc_info=err, extra={"status": 500, "request_id": request_id})
        message = f"the service failed to answer; its log has the traceback under request id {request_id}"
        if self.metrics is not None:
            self.metrics.request(_ENDPOINTS.get(path, "other"), 500)
            self.metrics.error("internal_error")
        try:
            await send_response(send, 500, error_body("internal_error", message, request_id), request_id)
        except Exception:  # the answer had started: the server closes the connection
            logger.warning("the error could not be answered: the response had already started")

    async def trace_body(self, body: bytes) -> dict[str, Any]:
        """The trace of one request body through the live pipeline, run on the predict thread
        (offered to mounted apps: the dashboard re-runs logged inputs with it)."""
        assert self.pipeline is not None and self.batcher is not None
        loop = asyncio.get_running_loop()
        trace = await loop.run_in_executor(self.batcher.executor, self.pipeline.trace, body)
        return trace.to_dict()

    # -- helpers ---------------------------------------------------------------

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
        await send_response(send, status, body, request_id, headers)

    async def _fail(self, send: Send, err: BaseException, request_id: str, endpoint: str, started: float) -> None:
        status, body, headers = error_for(err, request_id)
        assert self.metrics is not None
        self.metrics.request(endpoint, status, perf_counter() - started if started else None)
        self.metrics.error(orjson.loads(body)["error"]["type"])
        if self.log is not None and endpoint in ("predict", "batch"):
            ids = self.ids
            self.log.append_failure(
                self.name,
                ids["model_version"] or "",
                ids.get("rules_version"),
                status,
                (perf_counter() - started) * 1000,
            )
        if status >= 500:
            cause = err.cause if isinstance(err, PredictError) else err
            level = logging.ERROR if status == 500 else logging.WARNING
            logger.log(
                level,
                f"{endpoint} failed: {err}",
                exc_info=(type(cause), cause, cause.__traceback__) if status == 500 else None,
                extra={"status": status},
            )
        await send_response(send, status, body, request_id, headers)
