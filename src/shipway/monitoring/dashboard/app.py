"""The monitoring dashboard: a Starlette app over a store, at /dashboard.

    GET /dashboard                          the page (panels rendered on the server, refreshed by its script)
    GET /dashboard/panels                   the panels' HTML and figures, as the page refreshes them
    GET /dashboard/leaderboard              the runs of a task, ranked (leaderboard.py)
    GET /dashboard/api/metrics?since=&until=&step=&by=
    GET /dashboard/api/drift?since=&until=
    GET /dashboard/api/alerts?since=
    GET /dashboard/api/predictions?order=slowest|uncertain&limit=
    GET /dashboard/api/validation, /dashboard/api/versions, /dashboard/api/leaderboard?task=
    GET /dashboard/predictions/{request_id}  one logged prediction, and its trace when a pipeline is at hand
    GET /dashboard/plotly.js, /dashboard/static/*   assets, cached by the browser
    GET|POST /dashboard/login                 the token form (access.py)

The routes are listed once, in routing.py (pages.py, api.py, access.py and leaderboard.py hold
the endpoints); a page is an endpoint that returns `rendering.page(request, "name.html", title,
**context)` and a template that extends base.html.

`shipway dashboard` serves it alone with uvicorn; `shipway serve` mounts it beside the
service, whose hand-written ASGI path keeps /predict. A host that can re-run its pipeline
puts an async `trace(body: bytes) -> dict` in the ASGI scope under "shipway.trace" (serving
does), and prediction pages show a fresh trace of the logged input. A host also puts its
request id under "shipway.request_id": the dashboard's error bodies carry it, and the host
answers and counts an unexpected exception.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.errors import ConfigError
from shipway.monitoring.dashboard.snapshot import ORDERS, Sources, Window, drift_json, predictions_json, snapshot
from shipway.store.feedback import Describe
from shipway.store.provider import StoreProvider
from shipway.web import clean_id, new_id
from shipway.web.tokens import FailedAttempts

if TYPE_CHECKING:
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Dashboard", "TooLarge"]

logger = logging.getLogger("shipway.monitoring")

_SCAN_CACHE = 24  # drift and two prediction lists, for a few windows
_BODY_BYTES = 16_384  # the largest body the dashboard reads (the sign-in form)


class Dashboard:
    """The dashboard of one service's monitoring, read from `store`: a URL, or the process's
    store provider (store/provider.py) when it is mounted in `shipway serve`.

    The constructor only stores its arguments; the store is opened on the first request,
    in the process that serves it (after any fork). `refresh_s` is how often the page
    reloads its panels (0: never).
    """

    def __init__(
        self,
        store: str | StoreProvider,
        service: str,
        *,
        base_dir: Path | None = None,
        describe: Describe | None = None,
        profile: Path | None = None,
        validation: Path | None = None,
        drift_options: dict[str, Any] | None = None,
        export: Path | None = None,
        refresh_s: float = 30.0,
        prefix: str = "/dashboard",
    ) -> None:
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ConfigError(
                f"the dashboard prefix must start with / and not end with one, like /dashboard; got {prefix!r}"
            )
        # A URL: a handle of the dashboard's own. A provider: the process's one handle (`shipway
        # serve` gives the project's), with its outage policy; the dashboard then never closes it.
        self._owns_store = isinstance(store, str)
        self.stores = StoreProvider(store, base_dir) if isinstance(store, str) else store
        self.service = service
        self.base_dir = base_dir
        self.describe = describe
        self.profile = profile
        self.validation = validation
        self.drift_options = dict(drift_options or {})
        self.export = export
        self.refresh_s = refresh_s
        self.prefix = prefix
        self._lock = threading.Lock()
        self._scans: dict[tuple[Any, ...], Any] = {}
        self.attempts = FailedAttempts()  # wrong tokens per client address (shipway/web/tokens.py)

    # -- the store ---------------------------------------------------------------

    def sources(self) -> Sources:
        """The store (opened on first use) and the files the pages read."""
        return Sources(
            self.stores.get(),
            self.service,
            self.describe,
            self.profile,
            self.validation,
            self.drift_options,
            self.export,
        )

    def close(self) -> None:
        if self._owns_store:
            self.stores.close()

    def minutely(self, kind: str, window: Window, compute: Callable[[], Any]) -> Any:
        """`compute()` at most once a minute for the same window: drift and the prediction
        lists read every logged prediction of the window, and open pages refresh often."""
        key = (kind, round(window.since / 60), round(window.until / 60))
        with self._lock:
            if key in self._scans:
                return self._scans[key]
        result = compute()
        with self._lock:
            if len(self._scans) >= _SCAN_CACHE:
                self._scans.pop(next(iter(self._scans)))
            self._scans[key] = result
        return result

    def drift(self, window: Window) -> dict[str, Any]:
        return dict(self.minutely("drift", window, lambda: drift_json(self.sources(), window)))

    def snapshot(self, window: Window, by: str | None) -> dict[str, Any]:
        sources = self.sources()
        snap = snapshot(sources, window, by=by, scans=False)
        snap["drift"] = self.drift(window)
        for order in ORDERS:
            snap[order] = self.minutely(order, window, partial(predictions_json, sources, window, order))
        return snap

    # -- routes --------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Every route (routing.py). A new page: one Route there, one endpoint, one template."""
        from shipway.monitoring.dashboard.routing import routes

        return routes(self.prefix)

    @cached_property
    def app(self) -> ASGIApp:
        """The Starlette app, built on the first request: a service that mounts the dashboard
        imports Starlette and Jinja2 only once someone opens it."""
        from shipway.monitoring.dashboard.routing import build

        return build(self.routes())

    # -- ASGI --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        from shipway.monitoring.dashboard.rendering import error, request_id

        rid = scope.get("shipway.request_id") or _caller_id(scope) or new_id()
        token = request_id.set(rid)
        # "app" makes Starlette raise what it refuses (a 405), so that it is answered in the one shape.
        scope = {**scope, "shipway.dashboard": self, "app": self}
        try:
            await self.app(scope, _limited(receive, _BODY_BYTES), send)
        except Exception:
            if "shipway.request_id" in scope:
                raise  # the service that mounts the dashboard answers it, and counts it
            logger.exception("the dashboard failed", extra={"request_id": rid})
            message = f"the dashboard failed; its log has the traceback under request id {rid}"
            try:
                await error(500, "internal_error", message)(scope, receive, send)
            except Exception:  # the answer had started: the server closes the connection
                pass
        finally:
            request_id.reset(token)


class TooLarge(ConfigError):
    """A body past the dashboard's limit (answered 413)."""


def _limited(receive: Receive, limit: int) -> Receive:
    """`receive`, refusing a body past `limit` bytes before Starlette has read it all."""
    seen = 0

    async def read() -> Any:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise TooLarge(f"the body is over {limit} bytes")
        return message

    return read


def _caller_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            return clean_id(value)
    return None
