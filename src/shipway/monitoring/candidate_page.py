"""The dashboard's model-candidate page: the candidate against the live version over the window
(the numbers `shipway rollout compare` prints and the rollout guards judge).

GET {prefix}/candidate?since=1h shows it; {prefix}/api/candidate is the JSON.
"""

from __future__ import annotations

import asyncio
from html import escape
from typing import TYPE_CHECKING, Any

import orjson

from shipway.monitoring.asgi import HTML, JSON, Send, respond
from shipway.monitoring.candidate_view import candidate_html, candidate_json
from shipway.monitoring.page import document
from shipway.monitoring.snapshot import Window

if TYPE_CHECKING:
    from shipway.monitoring.dashboard import Dashboard

__all__ = ["candidate_api", "candidate_page"]

_CSP = b"default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]


def _data(dashboard: Dashboard, params: dict[str, str]) -> dict[str, Any]:
    window = Window.parse(params.get("since", "1h"), params.get("until"), params.get("step"))
    sources = dashboard.sources()
    return candidate_json(sources.store, sources.service, window.since, window.until, sources.describe)


async def candidate_page(dashboard: Dashboard, send: Send, params: dict[str, str]) -> None:
    data = await asyncio.to_thread(_data, dashboard, params)
    prefix = escape(dashboard.prefix)
    header = f'<header><h1><a href="{prefix}">{escape(dashboard.service)}</a>: model candidate</h1></header>'
    html = document(
        f"{dashboard.service}: model candidate",
        candidate_html(data),
        header=header,
        inline=False,
        base=dashboard.prefix + "/",
    )
    await respond(send, 200, html.encode(), HTML, [(b"content-security-policy", _CSP), *_HEADERS])


async def candidate_api(dashboard: Dashboard, send: Send, params: dict[str, str]) -> None:
    data = await asyncio.to_thread(_data, dashboard, params)
    await respond(send, 200, orjson.dumps(data, default=str), JSON, _HEADERS)
