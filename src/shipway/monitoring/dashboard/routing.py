"""The dashboard's routes, in one list, and the Starlette app around them: what Starlette
refuses (an unknown route, a method a route does not take) and the errors of the endpoints
are answered in the one error shape, as a page where a reader's browser asked."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from shipway.errors import ConfigError, ShipwayError, StoreUnavailable
from shipway.monitoring.dashboard import access, api, pages
from shipway.monitoring.dashboard.app import TooLarge
from shipway.monitoring.dashboard.candidate import candidate_api, candidate_page, rules_api, rules_page
from shipway.monitoring.dashboard.leaderboard import leaderboard_api, leaderboard_page
from shipway.monitoring.dashboard.rendering import error

__all__ = ["build", "routes"]

_ROUTES = "/, /panels, /leaderboard, /candidate, /rules, /api/{metrics,drift,alerts,predictions,validation,versions,leaderboard,candidate,rules}, /predictions/{request_id}"


def routes(p: str) -> list[BaseRoute]:
    """Every route under the prefix `p`. A new page: one Route here, one endpoint, one template."""
    html, data = access.guarded("html"), access.guarded("json")
    return [
        Route("/", _to_prefix),
        Route(p, html(pages.dashboard)),
        Route(p + "/panels", data(pages.panels)),
        Route(p + "/leaderboard", html(leaderboard_page)),
        Route(p + "/candidate", html(candidate_page)),
        Route(p + "/rules", html(rules_page)),
        Route(p + "/predictions/{request_id:path}", html(pages.prediction)),
        Route(p + "/api/leaderboard", data(leaderboard_api)),
        Route(p + "/api/candidate", data(candidate_api)),
        Route(p + "/api/rules", data(rules_api)),
        Route(p + "/api/{name}", data(api.answer)),
        Route(p + "/login", access.login, methods=["GET", "POST"]),
        Route(p + "/plotly.js", pages.Plotly()),
        Mount(p + "/static", app=pages.Assets(packages=[(__package__, "static")]), name="static"),
    ]


def build(routes: list[BaseRoute]) -> ASGIApp:
    """The router over `routes`, with the one error shape for what it refuses."""
    handlers: dict[Any, Any] = {
        HTTPException: _http_error,
        ConfigError: _bad_request,
        StoreUnavailable: _store_unavailable,
        ShipwayError: _store_error,
    }
    return ExceptionMiddleware(Router(routes, default=_not_found), handlers=handlers)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return "/api/" not in path and not path.endswith("/panels")


async def _to_prefix(request: Request) -> Response:
    return RedirectResponse(request.scope["shipway.dashboard"].prefix, 307)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    prefix = scope["shipway.dashboard"].prefix
    path = scope["path"]
    where = (
        f"under {prefix} the routes are {_ROUTES}" if path.startswith(prefix + "/") else f"the dashboard is at {prefix}"
    )
    await error(404, "not_found", f"no route {path!r}; {where}")(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "GET")
        response = error(405, "method_not_allowed", f"{request.url.path} takes {allowed}, not {request.method}")
        response.headers["allow"] = allowed
        return response
    return error(exc.status_code, "not_found" if exc.status_code == 404 else "bad_request", str(exc.detail))


async def _bad_request(request: Request, exc: Exception) -> Response:
    if isinstance(exc, TooLarge):
        return error(413, "payload_error", str(exc))
    return error(400, "bad_request", str(exc), request=request if _wants_html(request) else None)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    request.scope["shipway.dashboard"].stores.failed(exc)  # logged once; the next request reconnects
    return error(503, "store_unavailable", f"the store cannot be reached now: {exc}")


async def _store_error(request: Request, exc: Exception) -> Response:
    return error(500, "store_error", str(exc))
