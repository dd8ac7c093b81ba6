"""The monitoring dashboard: a plain ASGI app over a store, at /dashboard.

    GET /dashboard                          the page (panels rendered on the server, refreshed by its script)
    GET /dashboard/panels                   the panels' HTML and figures, as the page refreshes them
    GET /dashboard/api/metrics?since=&until=&step=&by=
    GET /dashboard/api/drift?since=&until=
    GET /dashboard/api/alerts?since=
    GET /dashboard/api/predictions?order=slowest|uncertain&limit=
    GET /dashboard/api/validation
    GET /dashboard/predictions/{request_id}  one logged prediction, and its trace when a pipeline is at hand
    GET /dashboard/plotly.js, /dashboard/static/*   assets, cached by the browser
    GET|POST /dashboard/login                 the token form (see access.py)

`shipway dashboard` serves it alone with uvicorn; `shipway serve` mounts it beside the
service. A host that can re-run its pipeline puts an async `trace(body: bytes) -> dict`
in the ASGI scope under "shipway.trace" (serving does), and prediction pages show a
fresh trace of the logged input. A host also puts its request id under "shipway.request_id":
the dashboard's error bodies carry it, and the host answers and counts an unexpected exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

from shipway.errors import ConfigError, ShipwayError, StoreUnavailable
from shipway.monitoring import access
from shipway.monitoring.asgi import HTML, JSON, Receive, Scope, Send, query, query_float, query_int, read_body, respond
from shipway.monitoring.candidate_page import candidate_api, candidate_page
from shipway.monitoring.leaderboard_page import leaderboard_api, leaderboard_page
from shipway.monitoring.page import asset, document
from shipway.monitoring.panels import render_panels
from shipway.monitoring.plots import plotly_js
from shipway.monitoring.predictions import find_record, prediction_page
from shipway.monitoring.snapshot import (
    ORDERS,
    Sources,
    Window,
    alerts_json,
    drift_json,
    metrics_json,
    predictions_json,
    snapshot,
    validation_json,
)
from shipway.store import Store, store_from_url
from shipway.store.feedback import Describe
from shipway.tokens import FailedAttempts, token_matches
from shipway.web import clean_id, error_body, new_id

__all__ = ["Dashboard"]

logger = logging.getLogger("shipway.monitoring")

_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SAFE = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_PRIVATE = [(b"cache-control", b"no-store"), *_SAFE]  # pages and data hold customer text
_WINDOWS = ("1h", "6h", "24h", "7d", "30d")
_SCAN_CACHE = 24  # drift and two prediction lists, for a few windows
# The request's id, for its error body: the service's when mounted in it, else the caller's or a new one.
_request_id: ContextVar[str] = ContextVar("shipway_dashboard_request_id", default="")


class Dashboard:
    """The dashboard of one service's monitoring, read from the store at `store_url`.

    The constructor only stores its arguments; the store is opened on the first request,
    in the process that serves it (after any fork). `refresh_s` is how often the page
    reloads its panels (0: never).
    """

    def __init__(
        self,
        store_url: str,
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
        self.store_url = store_url
        self.service = service
        self.base_dir = base_dir
        self.describe = describe
        self.profile = profile
        self.validation = validation
        self.drift_options = dict(drift_options or {})
        self.export = export
        self.refresh_s = refresh_s
        self.prefix = prefix
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._scans: dict[tuple[Any, ...], Any] = {}
        self.attempts = FailedAttempts()  # wrong tokens per client address (shipway/tokens.py)

    # -- the store ---------------------------------------------------------------

    def sources(self) -> Sources:
        """The store (opened on first use) and the files the pages read."""
        with self._lock:
            if self._store is None:
                store = store_from_url(self.store_url, self.base_dir)
                store.open()
                self._store = store
        return Sources(
            self._store, self.service, self.describe, self.profile, self.validation, self.drift_options, self.export
        )

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

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
        request_id = scope.get("shipway.request_id") or _caller_id(scope) or new_id()
        token = _request_id.set(request_id)
        try:
            await self._route(scope, receive, send)
        except Exception:
            if "shipway.request_id" in scope:
                raise  # the service that mounts the dashboard answers it, and counts it
            logger.exception("the dashboard failed", extra={"request_id": request_id})
            message = f"the dashboard failed; its log has the traceback under request id {request_id}"
            try:
                await self._error(send, 500, "internal_error", message)
            except Exception:  # the answer had started: the server closes the connection
                pass
        finally:
            _request_id.reset(token)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path in ("/", "") and self.prefix != "/":
            return await respond(send, 307, b"", HTML, [(b"location", self.prefix.encode())])
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return await self._error(send, 404, "not_found", f"no route {path!r}; the dashboard is at {self.prefix}")
        route = path[len(self.prefix) :] or "/"
        if method != "GET" and route != "/login":
            return await self._error(send, 405, "method_not_allowed", f"{path} takes GET, not {method}")
        if route in ("/plotly.js", "/static/monitoring.js", "/static/monitoring.css"):
            return await self._asset(scope, send, route)
        if route == "/login":
            return await self._login(scope, receive, send, method)
        presented = access.authorization(scope) is not None
        if presented and (wait := self.attempts.retry_after(access.client(scope))):
            return await self._too_many(send, wait)
        verdict = access.check(scope)
        if verdict == "login" and presented:
            self.attempts.failed(access.client(scope))
        if verdict != "ok":
            return await self._refuse(scope, send, verdict, path)
        params = query(scope)
        try:
            if route == "/":
                return await self._page(send, params)
            if route == "/panels":
                return await self._panels(send, params)
            if route in ("/leaderboard", "/api/leaderboard"):
                page = leaderboard_page if route == "/leaderboard" else leaderboard_api
                return await page(self, send, params)
            if route in ("/candidate", "/api/candidate"):
                page = candidate_page if route == "/candidate" else candidate_api
                return await page(self, send, params)
            if route.startswith("/api/"):
                return await self._api(send, route[5:], params)
            if route.startswith("/predictions/"):
                return await self._prediction(scope, send, unquote(route[len("/predictions/") :]), params)
        except ConfigError as err:
            return await self._error(
                send, 400, "bad_request", str(err), html=not route.startswith(("/api/", "/panels"))
            )
        except StoreUnavailable as err:
            return await self._error(send, 503, "store_unavailable", f"the store cannot be reached now: {err}")
        except ShipwayError as err:
            return await self._error(send, 500, "store_error", str(err))
        routes = "/, /panels, /leaderboard, /candidate, /api/{metrics,drift,alerts,predictions,validation,leaderboard,candidate}, /predictions/{request_id}"
        return await self._error(
            send, 404, "not_found", f"no route {path!r}; under {self.prefix} the routes are {routes}"
        )

    # -- pages -------------------------------------------------------------------

    async def _page(self, send: Send, params: dict[str, str]) -> None:
        window, by = _window(params), _by(params)
        snap = await asyncio.to_thread(self.snapshot, window, by)
        body, figures = render_panels(snap, trace_base=f"{self.prefix}/predictions/")
        html = document(
            f"{self.service}: shipway dashboard",
            body,
            header=self._header(params),
            figures=figures,
            inline=False,
            base=self.prefix + "/",
            body_attrs={
                "data-refresh": f"{self.refresh_s:g}",
                "data-panels": f"{self.prefix}/panels",
                "data-digest": _digest(body),
            },
        )
        await respond(send, 200, html.encode(), HTML, [(b"content-security-policy", _CSP), *_PRIVATE])

    async def _panels(self, send: Send, params: dict[str, str]) -> None:
        window, by = _window(params), _by(params)
        snap = await asyncio.to_thread(self.snapshot, window, by)
        body, figures = render_panels(snap, trace_base=f"{self.prefix}/predictions/")
        data = {
            "html": body,
            "digest": _digest(body),
            "figures": figures,
            "generated": snap["generated"],
            "window": window.to_dict(),
        }
        await respond(send, 200, orjson.dumps(data, default=str), JSON, _PRIVATE)

    async def _api(self, send: Send, name: str, params: dict[str, str]) -> None:
        window = _window(params)
        result: Any
        if name == "metrics":
            result = await asyncio.to_thread(metrics_json, self.sources(), window, _by(params))
        elif name == "drift":
            result = await asyncio.to_thread(self.drift, window)
        elif name == "alerts":
            limit = query_int(params, "limit", 50, 1000)
            result = {"events": await asyncio.to_thread(alerts_json, self.sources(), window, limit)}
        elif name == "predictions":
            order, limit = params.get("order", "slowest"), query_int(params, "limit", 10, 1000)
            rows = await asyncio.to_thread(predictions_json, self.sources(), window, order, limit)
            result = {"order": order, "predictions": rows}
        elif name == "validation":
            result = await asyncio.to_thread(validation_json, self.sources())
        else:
            names = "metrics, drift, alerts, predictions, validation"
            return await self._error(send, 404, "not_found", f"no API {name!r}; the APIs are {names}")
        await respond(send, 200, orjson.dumps(result, default=str), JSON, _PRIVATE)

    async def _prediction(self, scope: Scope, send: Send, request_id: str, params: dict[str, str]) -> None:
        ts = query_float(params, "ts")
        record = await asyncio.to_thread(find_record, self.sources(), request_id, ts)
        if record is None:
            message = f"no logged prediction of {self.service!r} has request id {request_id!r}"
            return await self._error(send, 404, "not_found", message, html=True)
        trace_fn = scope.get("shipway.trace")
        trace: dict[str, Any] | None = None
        trace_error = None
        if trace_fn is not None:
            try:
                trace = await trace_fn(record.inputs)
            except Exception as err:  # the page still shows the record
                logger.exception("re-running a logged prediction for its trace failed")
                trace_error = f"{type(err).__name__}: {err}"
        body = prediction_page(record, trace, trace_error, host_can_trace=trace_fn is not None, back=self.prefix)
        html = document(
            f"{request_id}: shipway dashboard", body, header=self._header(None), inline=False, base=self.prefix + "/"
        )
        await respond(send, 200, html.encode(), HTML, [(b"content-security-policy", _CSP), *_PRIVATE])

    def _header(self, params: dict[str, str] | None) -> str:
        service = escape(self.service)
        title = f'<h1><a href="{escape(self.prefix)}">{service}</a>: monitoring</h1>'
        if params is None:
            return f"<header>{title}</header>"
        since, by = params.get("since", "24h"), params.get("by", "model_version")
        windows = _WINDOWS if since in _WINDOWS else (*_WINDOWS, since)
        options = "".join(
            f'<option value="{escape(w)}"{" selected" if w == since else ""}>last {escape(w)}</option>' for w in windows
        )
        bys = "".join(
            f'<option value="{b}"{" selected" if b == by else ""}>split by {b.replace("_", " ")}</option>'
            for b in ("model_version", "rules_version", "none")
        )
        refresh = f"refreshes every {self.refresh_s:g} s" if self.refresh_s > 0 else "no auto-refresh"
        return (
            f"<header>{title}"
            f'<span class="meta">{refresh}</span> <span id="status"></span>'
            f'<form class="window" method="get" action="{escape(self.prefix)}">'
            f'<select name="since" aria-label="window">{options}</select>'
            f'<select name="by" aria-label="split">{bys}</select>'
            "<noscript><button>show</button></noscript></form>"
            f'<nav><a href="{escape(self.prefix)}/candidate">model candidate</a> '
            f'<a href="{escape(self.prefix)}/leaderboard">leaderboard</a></nav></header>'
        )

    # -- assets, login, errors -----------------------------------------------------

    async def _asset(self, scope: Scope, send: Send, route: str) -> None:
        try:
            if route == "/plotly.js":
                body, kind = (await asyncio.to_thread(_plotly_bytes)), b"application/javascript; charset=utf-8"
            else:
                name = route.rsplit("/", 1)[1]
                body = asset(name).encode()
                kind = b"text/css; charset=utf-8" if name.endswith(".css") else b"application/javascript; charset=utf-8"
        except ConfigError as err:
            return await self._error(send, 404, "not_found", str(err))
        etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        headers = [(b"etag", etag), (b"cache-control", b"public, max-age=86400"), *_SAFE]
        if any(name == b"if-none-match" and etag in value for name, value in scope.get("headers") or []):
            return await respond(send, 304, b"", kind, headers)
        await respond(send, 200, body, kind, headers)

    async def _login(self, scope: Scope, receive: Receive, send: Send, method: str) -> None:
        token = os.environ.get(access.TOKEN_ENV) or ""
        target = access.next_page(query(scope).get("next") or self.prefix, self.prefix)
        if method == "POST":
            try:
                fields = access.form_fields(await read_body(receive, 16_384))
            except ConfigError as err:
                return await self._error(send, 413, "payload_error", str(err))
            target = access.next_page(fields.get("next") or self.prefix, self.prefix)
            if wait := self.attempts.retry_after(access.client(scope)):
                return await self._too_many(send, wait)
            if token_matches(fields.get("token"), token):
                headers = [(b"location", target.encode()), (b"set-cookie", access.session_cookie(token, self.prefix))]
                return await respond(send, 303, b"", HTML, [*headers, *_PRIVATE])
            if token:
                self.attempts.failed(access.client(scope))
            message = (
                "That is not the token." if token else f"No token is set: start the service with {access.TOKEN_ENV}."
            )
            return await self._login_page(send, 401, target, message)
        await self._login_page(send, 200, target, "")

    async def _login_page(self, send: Send, status: int, target: str, message: str) -> None:
        body = access.login_form(self.prefix, self.service, target, message)
        html = document("Sign in: shipway dashboard", body, inline=False, base=self.prefix + "/")
        await respond(send, status, html.encode(), HTML, [(b"content-security-policy", _CSP), *_PRIVATE])

    async def _refuse(self, scope: Scope, send: Send, verdict: str, path: str) -> None:
        wants_json = "/api/" in path or path.endswith("/panels")
        if verdict == "login":
            message = f"the dashboard needs the admin token: send `Authorization: Bearer <{access.TOKEN_ENV}>` or sign in at {self.prefix}/login"
            if wants_json:
                return await self._error(send, 401, "unauthorized", message)
            qs = scope.get("query_string", b"").decode("latin-1")
            return await self._login_page(send, 401, access.next_page(path + (f"?{qs}" if qs else ""), self.prefix), "")
        message = (
            f"the dashboard shows customer inputs, so without {access.TOKEN_ENV} it answers only this machine "
            f"(loopback); start the service with {access.TOKEN_ENV} set to a secret and sign in with it"
        )
        await self._error(send, 403, "forbidden", message, html=not wants_json)

    async def _too_many(self, send: Send, wait: int) -> None:
        message = f"too many wrong tokens from this address; try again in {wait} s"
        payload = error_body("too_many_attempts", message, _request_id.get())
        await respond(send, 429, payload, JSON, [(b"retry-after", str(wait).encode()), *_PRIVATE])

    async def _error(self, send: Send, status: int, kind: str, message: str, *, html: bool = False) -> None:
        if html:
            body = f'<section><h2>{status}</h2><p class="error">{escape(message)}</p></section>'
            page = document(
                f"{status}: shipway dashboard", body, header=self._header(None), inline=False, base=self.prefix + "/"
            )
            return await respond(send, status, page.encode(), HTML, [(b"content-security-policy", _CSP), *_PRIVATE])
        request_id = _request_id.get()
        payload = error_body(kind, message, request_id)
        await respond(send, status, payload, JSON, [(b"x-request-id", request_id.encode()), *_PRIVATE])


_PLOTLY: bytes | None = None


def _plotly_bytes() -> bytes:
    global _PLOTLY
    if _PLOTLY is None:
        _PLOTLY = plotly_js().encode()
    return _PLOTLY


def _digest(html: str) -> str:
    """Names the panels' HTML, so that a refresh replaces it only when it changed."""
    return hashlib.sha256(html.encode()).hexdigest()[:16]


def _caller_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            return clean_id(value)
    return None


def _window(params: dict[str, str]) -> Window:
    return Window.parse(params.get("since"), params.get("until"), params.get("step"))


def _by(params: dict[str, str]) -> str | None:
    by = params.get("by", "model_version")
    return None if by in ("none", "") else by
