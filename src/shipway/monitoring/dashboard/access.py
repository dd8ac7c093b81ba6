"""Who may read the dashboard, and the sign-in: the dashboard shows logged inputs, which are customer text.

- With SHIPWAY_ADMIN_TOKEN set (the token the service's admin routes take), every page and
  API call needs it: as `Authorization: Bearer <token>` (scripts; shipway/web/tokens.py's one
  check, wrong tokens limited per client address), or through the sign-in form, which sets
  a signed session cookie (HttpOnly, SameSite=Strict, 12 hours) that holds an HMAC of the
  token and its expiry, never the token itself.
- Without it, the dashboard answers only clients on the loopback interface (this machine,
  or `kubectl port-forward`), and tells everyone else to set the token.

Static assets (stylesheet, scripts, plotly.js) hold no data and are served to anyone.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipway.monitoring.dashboard.rendering import PRIVATE, error, page
from shipway.web.tokens import bearer, token_matches

if TYPE_CHECKING:
    from shipway.monitoring.dashboard.app import Dashboard

__all__ = [
    "COOKIE",
    "SESSION_S",
    "TOKEN_ENV",
    "check",
    "guarded",
    "login",
    "next_page",
    "session_cookie",
    "session_value",
]

TOKEN_ENV = "SHIPWAY_ADMIN_TOKEN"
COOKIE = "shipway_dashboard"
SESSION_S = 12 * 3600
FORM_BYTES = 16_384  # the sign-in form is two short fields

Verdict = Literal["ok", "login", "forbidden"]
Endpoint = Callable[[Request], Awaitable[Response]]


def check(request: Request, token: str | None = None, now: float | None = None) -> Verdict:
    """ok: may read; login: needs the token; forbidden: no token is set and the client is remote."""
    token = os.environ.get(TOKEN_ENV) if token is None else token
    if not token:
        return "ok" if _loopback(request.client) else "forbidden"
    if token_matches(bearer(_authorization(request)), token):
        return "ok"
    session = request.cookies.get(COOKIE)
    if session is not None and _valid_session(session, token, time.time() if now is None else now):
        return "ok"
    return "login"


def guarded(kind: Literal["html", "json"]) -> Callable[[Endpoint], Endpoint]:
    """An endpoint answered only to a reader `check` lets in; others get the sign-in form (a
    page) or a 401 (data), a 403 from afar without a token, a 429 after too many wrong tokens."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def run(request: Request) -> Response:
            refusal = _refusal(request, kind)
            return refusal if refusal is not None else await endpoint(request)

        return run

    return wrap


def _refusal(request: Request, kind: str) -> Response | None:
    dashboard: Dashboard = request.scope["shipway.dashboard"]
    presented = _authorization(request) is not None
    if presented and (wait := dashboard.attempts.retry_after(_client(request))):
        return _too_many(wait)
    verdict = check(request)
    if verdict == "ok":
        return None
    if verdict == "login" and presented:
        dashboard.attempts.failed(_client(request))
    if verdict == "login":
        if kind == "json":
            message = f"the dashboard needs the admin token: send `Authorization: Bearer <{TOKEN_ENV}>` or sign in at {dashboard.prefix}/login"
            return error(401, "unauthorized", message)
        query = request.url.query
        target = next_page(request.url.path + (f"?{query}" if query else ""), dashboard.prefix)
        return _form(request, 401, target, "")
    message = (
        f"the dashboard shows customer inputs, so without {TOKEN_ENV} it answers only this machine "
        f"(loopback); start the service with {TOKEN_ENV} set to a secret and sign in with it"
    )
    return error(403, "forbidden", message, request=request if kind == "html" else None)


async def login(request: Request) -> Response:
    """GET: the sign-in form. POST: a right token sets the session cookie and goes back to `next`."""
    dashboard: Dashboard = request.scope["shipway.dashboard"]
    token = os.environ.get(TOKEN_ENV) or ""
    target = next_page(request.query_params.get("next") or dashboard.prefix, dashboard.prefix)
    if request.method != "POST":
        return _form(request, 200, target, "")
    async with request.form(max_files=0, max_fields=8) as fields:
        given, asked = fields.get("token"), fields.get("next")
    target = next_page(asked if isinstance(asked, str) and asked else dashboard.prefix, dashboard.prefix)
    if wait := dashboard.attempts.retry_after(_client(request)):
        return _too_many(wait)
    if isinstance(given, str) and token_matches(given, token):
        response = RedirectResponse(target, 303, headers=PRIVATE)
        response.set_cookie(
            COOKIE, session_value(token), max_age=SESSION_S, path=dashboard.prefix, httponly=True, samesite="strict"
        )
        return response
    if token:
        dashboard.attempts.failed(_client(request))
    message = "That is not the token." if token else f"No token is set: start the service with {TOKEN_ENV}."
    return _form(request, 401, target, message)


def _form(request: Request, status: int, target: str, message: str) -> Response:
    context = {"next": target, "message": message, "token_env": TOKEN_ENV}
    return page(request, "login.html", "Sign in: shipway dashboard", status=status, **context)


def _too_many(wait: int) -> Response:
    response = error(429, "too_many_attempts", f"too many wrong tokens from this address; try again in {wait} s")
    response.headers["retry-after"] = str(wait)
    return response


def session_value(token: str, now: float | None = None) -> str:
    """The value of a fresh session cookie for `token`: its expiry and their HMAC."""
    expires = int((time.time() if now is None else now) + SESSION_S)
    return f"{expires}.{_sign(token, expires)}"


def session_cookie(token: str, path: str, now: float | None = None) -> bytes:
    """The Set-Cookie value of a fresh session for `token` (as a client would hold it)."""
    value = session_value(token, now)
    return f"{COOKIE}={value}; Path={path}; Max-Age={SESSION_S}; HttpOnly; SameSite=Strict".encode()


def next_page(target: str, prefix: str) -> str:
    """Where the sign-in form sends the browser back to: `target` when it is a page of the
    dashboard (a path under `prefix`, plain printable ASCII, no `..`), else the dashboard.
    Anything else could send the browser to another site or break the Location header."""
    path = target.partition("?")[0]
    inside = path == prefix or path.startswith(prefix + "/")
    plain = target.isascii() and target.isprintable() and "\\" not in target and " " not in target
    if inside and plain and ".." not in path.split("/"):
        return target
    return prefix


def _sign(token: str, expires: int) -> str:
    return hmac.new(token.encode(), f"shipway-dashboard:{expires}".encode(), hashlib.sha256).hexdigest()


def _valid_session(value: str, token: str, now: float) -> bool:
    expires, _, signature = value.partition(".")
    if not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(signature.encode(), _sign(token, int(expires)).encode())


def _authorization(request: Request) -> bytes | None:
    """The raw Authorization header, as tokens.bearer reads it."""
    for name, value in request.scope.get("headers") or ():
        if name == b"authorization":
            return bytes(value)
    return None


def _client(request: Request) -> str:
    """The client's address, for counting its wrong tokens."""
    return request.client.host if request.client else ""


def _loopback(client: Any) -> bool:
    if not client:
        return False  # a unix socket or a server that does not say: not provably local
    try:
        address = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return bool((mapped or address).is_loopback)
