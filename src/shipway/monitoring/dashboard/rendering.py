"""The dashboard's and the report's HTML: Jinja2 templates with autoescaping, and the responses
that carry them.

Every value a template prints is escaped by Jinja2 (logged inputs are customer text); data for
the page's script goes through the `tojson` filter, which writes `<`, `>`, `&` and `'` as JSON
escapes, so `</script>` in customer text stays text. Only the stylesheet, the script and
plotly.js, which ship with the package, are placed as they are (the report inlines them).

The dashboard links its assets from its own routes, so that its pages need no inline script
and a strict Content-Security-Policy holds.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
import orjson
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from shipway.web import error_body

__all__ = [
    "CSP",
    "PRIVATE",
    "SAFE",
    "asset",
    "environment",
    "error",
    "inline_assets",
    "ms",
    "num",
    "page",
    "pct",
    "render",
    "request_id",
    "short_json",
    "utc",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SAFE = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
PRIVATE = {"cache-control": "no-store", **SAFE}  # pages and data hold customer text
TEXT_CHARS = 140
# The request's id, for its error body: the service's when mounted in it, else the caller's or a new one.
request_id: ContextVar[str] = ContextVar("shipway_dashboard_request_id", default="")


@functools.cache
def asset(name: str) -> str:
    """A file shipped in shipway/monitoring/dashboard/static."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment: templates from the package, every value escaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["json.dumps_function"] = lambda value, **_: orjson.dumps(value, default=str).decode()
    env.policies["json.dumps_kwargs"] = {}
    env.filters.update(utc=utc, pct=pct, ms=ms, num=num, short_json=short_json, thousands=_thousands)
    return env


def render(name: str, **context: Any) -> Markup:
    """The template `name` rendered with `context`: markup, since every value in it was escaped."""
    return Markup(environment().get_template(name).render(**context))


def page(
    request: Request, template: str, title: str, *, status: int = 200, heading: str = "monitoring", **context: Any
) -> Response:
    """A dashboard page: `template` (which extends base.html) with the dashboard's header, its
    assets linked from the dashboard's routes, and the security headers of a page."""
    prefix = request.scope["shipway.dashboard"].prefix
    context.setdefault("service", request.scope["shipway.dashboard"].service)
    html = render(template, title=title, heading=heading, prefix=prefix, base=prefix + "/", inline=False, **context)
    return HTMLResponse(html, status, headers={"content-security-policy": CSP, **PRIVATE})


def error(status: int, kind: str, message: str, *, request: Request | None = None) -> Response:
    """An error: a page when `request` is given (a reader's browser), else the one JSON error body."""
    if request is not None:
        return page(request, "error.html", f"{status}: shipway dashboard", status=status, code=status, message=message)
    rid = request_id.get()
    headers = {"x-request-id": rid, **PRIVATE}
    return Response(error_body(kind, message, rid), status, headers=headers, media_type="application/json")


def inline_assets(plotly: str) -> dict[str, Markup]:
    """The report's stylesheet and scripts, placed in the file as they are (they ship with shipway)."""
    return {"css": Markup(asset("monitoring.css")), "js": Markup(asset("monitoring.js")), "plotly": Markup(plotly)}


def short_json(value: Any, limit: int = TEXT_CHARS) -> str:
    """A value as one line of JSON, cut at `limit` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def utc(ts: Any, micro: bool = False) -> str:
    if not isinstance(ts, (int, float)):
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC" if micro else "%Y-%m-%d %H:%M:%S")


def pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "n/a"


def ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, (int, float)) else "n/a"


def num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return f"{value:.4g}"


def _thousands(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value or 0)
