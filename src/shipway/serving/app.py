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
from time import perf_counter
from typing import Any

from shipway.errors import StoreError
from shipway.project import Project
from shipway.registry import current_candidate
from shipway.rules import Decision, RuleSet
from shipway.rules.live import Active
from shipway.serving import introspection
from shipway.serving.admin import admin
from shipway.serving.batching import Batcher
from shipway.serving.candidates import CandidateManager, Shadow
from shipway.serving.feedback import FeedbackWriter, feedback_endpoint
from shipway.serving.jobs import Job, Jobs
from shipway.serving.logs import request_id_var
from shipway.serving.metrics import Metrics
from shipway.serving.models import ModelManager
from shipway.serving.predict import predict, predict_batch
from shipway.serving.responses import error_body
from shipway.serving.runtime import Runtime, Version
from shipway.serving.warmup import warm_up
from shipway.store.prediction_log import PredictionLog
from shipway.web.http import Receive, Scope, Send, request_headers, send_response, too_large

__all__ = ["App"]

logger = logging.getLogger("shipway.serving")

_STUCK_EXIT = 70  # EX_SOFTWARE
Handler = Callable[[Receive, Send, str], Awaitable[None]]
# A guarded route: (receive, send, request id, the Authorization header, the client address).
Guarded = Callable[[Receive, Send, str, "bytes | None", str], Awaitable[None]]
# The endpoint label of the metrics, by path, for an error answered outside the endpoint's own code.
_ENDPOINTS = {"/predict": "predict", "/predict/batch": "batch", "/explain": "explain", "/feedback": "feedback"}
Mounted = Callable[[Scope, Receive, Send], Awaitable[None]]  # an ASGI app


class App:
    """One project's service behind HTTP. `preload()` loads the model; ASGI lifespan does the rest.

    Its state is `runtime` (serving/runtime.py); the handlers get the runtime and what else
    they use, bound here when the routes are made. The pipeline, the rules, the store handle
    and the gate policy all come from `project` (shipway.project), as in every other context."""

    def __init__(
        self,
        project: Project,
        jobs: Sequence[Job] = (),
        mounts: Mapping[str, Mounted] | None = None,
    ) -> None:
        self.project = project
        settings = project.settings
        self.runtime = rt = Runtime.of(project)
        self.jobs = Jobs(jobs)  # background callables from the CLI layer, run in each worker
        # ASGI apps from the CLI layer by path prefix (the dashboard at /dashboard). Each request
        # under a prefix goes to its app with "shipway.trace" in the scope (an async function
        # from a request body to the trace of the live pipeline, for apps that show traces) and
        # "shipway.request_id"; an exception it raises is answered and counted here.
        self.mounts = dict(mounts or {})
        self.models = ModelManager(rt)
        self.candidates = CandidateManager(rt, self.models)
        self.shadow = Shadow(rt, settings["batching.max_queue"])
        self.feedback = FeedbackWriter(settings, project.store)
        self._tasks: list[asyncio.Task[None]] = []
        self._routes: dict[str, dict[str, Handler]] = {
            "/predict": {"POST": partial(predict, rt, self.shadow)},
            "/predict/batch": {"POST": partial(predict_batch, rt, self.shadow)},
            "/explain": {"POST": partial(introspection.explain_endpoint, rt)},
            "/health": {"GET": partial(introspection.health, rt)},
            "/ready": {"GET": partial(introspection.ready, rt)},
            "/metrics": {"GET": partial(introspection.metrics, rt)},
            "/openapi.json": {"GET": partial(introspection.openapi_json, rt)},
            "/": {"GET": partial(introspection.index, rt, self.candidates.describe)},
        }
        # Routes that read the Authorization header themselves: feedback and the admin operations.
        self._guarded_routes: dict[tuple[str, str], Guarded] = {
            ("/feedback", "POST"): partial(feedback_endpoint, rt, self.feedback),
            **{
                route: partial(admin, rt, self.models, action=action)
                for route, action in (
                    (("/admin/rules", "GET"), "history"),
                    (("/admin/rules", "POST"), "apply"),
                    (("/admin/rules/rollback", "POST"), "rollback"),
                    (("/admin/model", "GET"), "model_history"),
                    (("/admin/model", "POST"), "deploy"),
                )
            },
        }
        # Every path a client may call, as GET / lists it: the open routes, feedback, admin, mounts.
        rt.routes = list(dict.fromkeys([*self._routes, *(path for path, _ in self._guarded_routes), *self.mounts]))

    # -- lifecycle -------------------------------------------------------------

    def preload(self) -> None:
        """Load the model, build the pipeline and check the rules (in the parent, before fork)."""
        rt = self.runtime
        if rt.live is not None:
            return
        project = self.project
        # A restart serves the newest deployed model (a registered version: its checkout).
        artifacts, self.models.applied = project.serving_artifacts(create=True)
        state = None
        try:
            store = project.store.available()
            state = current_candidate(store, rt.name) if store is not None else None
        except StoreError as err:
            logger.warning("cannot read the model candidate; serving without one: %s", err)
        rt.ids = project.ids(artifacts)
        rt.rules = project.rules_manager(artifacts, on_decision=self._count_decision, on_swap=self._rules_swapped)
        if project.gate is not None:
            rt.rules.gate = self._gate_rules
        pipeline = project.build(rt.rules.live, artifacts)
        rt.rules.preload()  # closes the project's store handle: no connection may cross the fork
        pipeline.ids["rules_version"] = rt.ids["rules_version"]
        rt.set_live(Version(pipeline, dict(rt.ids)))
        rt.default_body = project.default_body(pipeline)
        if state is not None and state.active:
            self.candidates.apply(state)  # loaded before fork, as the live model
            project.store.close()
        # Everything loaded so far lives as long as the process: move it out of the collector's
        # reach. Full collections then skip the model's objects (banking77 under load: 1.3 s of
        # every 8 s in the collector before, 0.4 s after), and workers forked from here do not
        # write to the parent's pages when they collect (the gc.freeze documentation).
        gc.freeze()

    async def startup(self) -> None:
        rt = self.runtime
        if rt.live is None:
            await asyncio.to_thread(self.preload)
        assert rt.live is not None
        s = rt.settings
        has_batch = rt.service.has_batch
        rt.metrics = Metrics(rt.name)
        rt.batcher = Batcher(
            rt.live.run,
            max_batch_size=s["batching.max_batch_size"] if has_batch else 1_000_000,
            # Without a batch form there is nothing to gain by waiting for company.
            max_wait_s=s["batching.max_wait_ms"] / 1000 if has_batch else 0.0,
            max_queue_wait_s=s["batching.max_queue_wait_ms"] / 1000,
            max_queue=s["batching.max_queue"],
            inline=s["batching.inline"],
            on_batch=rt.metrics.batch,
        )
        await rt.batcher.start()
        if s["log.enabled"]:
            rt.log = PredictionLog(
                self.project.store,  # the worker's one store handle; the spool is the log's own
                base_dir=s.root,
                flush_interval_s=s["log.flush_interval_s"],
                spool_dir=s.path("log.spool_dir"),
                sample_rate=s["log.sample_rate"],
                redact=rt.service.redact,
                writer=s["log.writer"],
            )
            rt.log.start()
            rt.refresh_log()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(warm_up(rt)),
            loop.create_task(self._watch()),
            loop.create_task(self._sync()),
            loop.create_task(self.shadow.run()),
        ]
        self.jobs.start()

    async def shutdown(self) -> None:
        """Finish queued predictions, then write every logged record."""
        rt = self.runtime
        rt.ready = False
        rt.not_ready_reason = "shutting down"
        for task in self._tasks:
            task.cancel()
        await asyncio.to_thread(self.jobs.stop)
        if rt.batcher is not None:
            # Behind a stuck predict nothing queued can run: waiting for it only delays the restart.
            await rt.batcher.stop(timeout=0 if rt.stuck else rt.settings["serve.graceful_timeout_s"])
        if rt.metrics is not None:
            rt.metrics.flush(0)  # the last second's tallies
        if rt.log is not None:
            rt.log_plain = None  # a request that races the close goes through add(), which counts it
            await asyncio.to_thread(rt.log.close)
        for mounted in self.mounts.values():
            close = getattr(mounted, "close", None)  # a mounted app may hold resources of its own
            if close is not None:
                await asyncio.to_thread(close)
        await asyncio.to_thread(self.project.close)  # the one store handle: rules, models, feedback, jobs
        logger.info("worker stopped", extra={"log": rt.log.stats if rt.log else None, "shadow_shed": self.shadow.shed})
        if rt.stuck:
            # The stuck predict thread cannot be joined; everything else is flushed. Not 3 or 4:
            # gunicorn's arbiter reads those as a worker that failed to boot and stops the server.
            os._exit(_STUCK_EXIT)

    async def _watch(self) -> None:
        """Once a second: export the prediction log's counts, and give up on a stuck predict.

        A predict that has run for twice its timeout (plus 5 s) holds this worker's only
        predict thread, so every later request would time out: the worker reports itself
        unhealthy and stops, and the supervisor starts a fresh one.
        """
        rt = self.runtime
        assert rt.batcher is not None and rt.metrics is not None
        limit = 2 * rt.timeout + 5
        while True:
            await asyncio.sleep(1.0)
            rt.metrics.flush(rt.in_flight)
            if rt.log is not None:
                rt.refresh_log()
                rt.metrics.prediction_log(rt.log.stats)
            since = rt.batcher.running_since
            if since is not None and perf_counter() - since > limit and not rt.stuck:
                rt.stuck = True
                rt.ready = False
                rt.not_ready_reason = f"predict has been running for over {limit:g} s; this worker is restarting"
                logger.error("predict is stuck; stopping this worker so that it is replaced", extra={"seconds": limit})
                os.kill(os.getpid(), signal.SIGTERM)

    async def _sync(self) -> None:
        """Every rules.poll_s: pick up rules, the model candidate's state and model deployments
        made through any worker or replica, or a changed rules file."""
        rt = self.runtime
        assert rt.rules is not None
        steps = (
            (rt.rules.sync, "rules sync failed; the current rules keep serving"),
            (self.candidates.sync, "candidate sync failed; the current versions keep serving"),
            (self.models.sync, "model sync failed; the current model keeps serving"),
        )
        while True:
            for step, failed in steps:
                try:
                    await asyncio.to_thread(step)
                except Exception:
                    logger.exception(failed)
            await asyncio.sleep(rt.settings["rules.poll_s"])

    def _gate_rules(self, ruleset: RuleSet) -> None:
        """Run the gate against the live pipeline with `ruleset` as its rules; GateFailed refuses them."""
        rt = self.runtime
        assert rt.pipeline is not None
        # On the predict thread: the model need not be thread-safe, and predictions wait briefly.
        executor = rt.batcher.executor if rt.batcher is not None else None
        run = (lambda fn, *args: executor.submit(fn, *args).result()) if executor is not None else None
        self.project.check_rules(rt.pipeline, ruleset, run)

    def _rules_swapped(self, active: Active) -> None:
        rt = self.runtime
        rt.update_ids({"rules_version": active.versions[0]})
        if rt.pipeline is not None:
            rt.pipeline.ids["rules_version"] = active.versions[0]  # traces carry it too

    def _count_decision(self, decision: Decision) -> None:
        metrics = self.runtime.metrics
        if metrics is not None:
            metrics.decision(decision.queue, decision.fired, decision.rules_version)

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
        rt = self.runtime
        if length > rt.max_body:
            body = error_body("payload_error", too_large(length, rt.max_body), request_id)
            return await rt.refuse(send, 413, "payload_error", body, request_id)
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
                return await guarded(receive, send, request_id, authorization, str(client[0]) if client else "")
            allowed = sorted(methods or {m for (p, m) in self._guarded_routes if p == path})
            if allowed:
                body = error_body("method_not_allowed", f"{path} takes {', '.join(allowed)}, not {method}", request_id)
                allow = [(b"allow", ", ".join(allowed).encode())]
                return await rt.refuse(send, 405, "method_not_allowed", body, request_id, allow)
            routes = ", ".join([*self._routes, *dict.fromkeys(p for p, _ in self._guarded_routes), *self.mounts])
            body = error_body("not_found", f"no route {path!r}; the routes are {routes}", request_id)
            return await rt.refuse(send, 404, "not_found", body, request_id)
        except Exception as err:  # a bug of ours: still the one shape, counted, logged with the request id
            await self._crash(send, err, request_id, path)
        finally:
            request_id_var.reset(token)

    async def _crash(self, send: Send, err: Exception, request_id: str, path: str) -> None:
        """An exception no endpoint handled: logged with its traceback, counted, and answered as
        the generic 500 unless the answer had already started."""
        logger.error(f"{path} failed: {err!r}", exc_info=err, extra={"status": 500, "request_id": request_id})
        message = f"the service failed to answer; its log has the traceback under request id {request_id}"
        metrics = self.runtime.metrics
        if metrics is not None:
            metrics.request(_ENDPOINTS.get(path, "other"), 500)
            metrics.error("internal_error")
        try:
            await send_response(send, 500, error_body("internal_error", message, request_id), request_id)
        except Exception:  # the answer had started: the server closes the connection
            logger.warning("the error could not be answered: the response had already started")

    async def trace_body(self, body: bytes) -> dict[str, Any]:
        """The trace of one request body through the live pipeline, run on the predict thread
        (offered to mounted apps: the dashboard re-runs logged inputs with it)."""
        rt = self.runtime
        assert rt.pipeline is not None and rt.batcher is not None
        loop = asyncio.get_running_loop()
        trace = await loop.run_in_executor(rt.batcher.executor, rt.pipeline.trace, body)
        return trace.to_dict()
