"""Who may read the dashboard: it shows logged inputs, which are customer text.

- With SHIPWAY_ADMIN_TOKEN set (the token the service's admin routes take), every page and
  API call needs it: as `Authorization: Bearer <token>` (scripts; shipway/tokens.py's one
  check, wrong tokens limited per client address), or through the login
  form, which sets a signed session cookie (HttpOnly, SameSite=Strict, 12 hours) that holds
  an HMAC of the token and its expiry, never the token itself.
- Without it, the dashboard answers only clients on the loopback interface (this machine,
  or `kubectl port-forward`), and tells everyone else to set the token.

Static assets (stylesheet, scripts, plotly.js) hold no data and are served to anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import time
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qs

from shipway.tokens import bearer, token_matches

__all__ = [
    "COOKIE",
    "SESSION_S",
    "TOKEN_ENV",
    "authorization",
    "check",
    "client",
    "form_fields",
    "login_form",
    "next_page",
    "session_cookie",
]

TOKEN_ENV = "SHIPWAY_ADMIN_TOKEN"
COOKIE = "shipway_dashboard"
SESSION_S = 12 * 3600

Verdict = Literal["ok", "login", "forbidden"]


def check(scope: dict[str, Any], token: str | None = None, now: float | None = None) -> Verdict:
    """ok: may read; login: needs the token; forbidden: no token is set and the client is remote."""
    token = os.environ.get(TOKEN_ENV) if token is None else token
    if not token:
        return "ok" if _loopback(scope.get("client")) else "forbidden"
    authorization, cookies = _credentials(scope)
    if authorization is not None and token_matches(bearer(authorization), token):
        return "ok"
    session = cookies.get(COOKIE)
    if session is not None and _valid_session(session, token, time.time() if now is None else now):
        return "ok"
    return "login"


def authorization(scope: dict[str, Any]) -> bytes | None:
    """The request's Authorization header, if it sent one."""
    return _credentials(scope)[0]


def client(scope: dict[str, Any]) -> str:
    """The client's address, for counting its wrong tokens."""
    peer = scope.get("client")
    return str(peer[0]) if peer else ""


def session_cookie(token: str, path: str, now: float | None = None) -> bytes:
    """The Set-Cookie value of a fresh session for `token`."""
    expires = int((time.time() if now is None else now) + SESSION_S)
    value = f"{expires}.{_sign(token, expires)}"
    return f"{COOKIE}={value}; Path={path}; Max-Age={SESSION_S}; HttpOnly; SameSite=Strict".encode()


def login_form(prefix: str, service: str, target: str, message: str) -> str:
    """The sign-in form; `target` is where to go back to, `message` why the last try failed."""
    note = f'<p class="error">{escape(message)}</p>' if message else ""
    return (
        f'<form class="login" method="post" action="{escape(prefix)}/login">'
        f"<h2>{escape(service)}: monitoring</h2>"
        "<p>This dashboard shows logged customer inputs. Enter the service's admin token "
        f"(the {TOKEN_ENV} it was started with).</p>{note}"
        '<input type="password" name="token" autocomplete="current-password" autofocus aria-label="token">'
        f'<input type="hidden" name="next" value="{escape(target)}"><button>Sign in</button></form>'
    )


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


def form_fields(body: bytes) -> dict[str, str]:
    """The fields of an application/x-www-form-urlencoded body (the login form)."""
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if v}


def _sign(token: str, expires: int) -> str:
    return hmac.new(token.encode(), f"shipway-dashboard:{expires}".encode(), hashlib.sha256).hexdigest()


def _valid_session(value: str, token: str, now: float) -> bool:
    expires, _, signature = value.partition(".")
    if not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(signature.encode(), _sign(token, int(expires)).encode())


def _credentials(scope: dict[str, Any]) -> tuple[bytes | None, dict[str, str]]:
    authorization = None
    cookies: dict[str, str] = {}
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            authorization = value
        elif name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                cookies.setdefault(key, val)
    return authorization, cookies


def _loopback(client: Any) -> bool:
    if not client:
        return False  # a unix socket or a server that does not say: not provably local
    try:
        address = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return bool((mapped or address).is_loopback)
