"""The dashboard's comparison pages over a window: the model candidate against the live version
(the numbers `shipway rollout compare` prints and the rollout guards judge), and the shadow rules
against the live rules (the numbers `shipway rules compare` prints).

GET {prefix}/candidate?since=1h and {prefix}/rules?since=1h show them; {prefix}/api/candidate
and {prefix}/api/rules are the JSON.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from shipway.monitoring.candidate_view import candidate_html, candidate_json
from shipway.monitoring.dashboard import params
from shipway.monitoring.dashboard.rendering import PRIVATE, page
from shipway.monitoring.rules_view import rules_html, rules_json
from shipway.web import dumps

if TYPE_CHECKING:
    from shipway.monitoring.dashboard.app import Dashboard

__all__ = ["candidate_api", "candidate_page", "rules_api", "rules_page"]

WINDOWS = ("15m", "1h", "6h", "24h", "7d")


def _data(board: Dashboard, request: Request) -> dict[str, Any]:
    window = params.window({"since": "1h", **request.query_params})
    sources = board.sources()
    return candidate_json(sources.store, sources.service, window.since, window.until, sources.describe)


def _rules_data(board: Dashboard, request: Request) -> dict[str, Any]:
    window = params.window({"since": "1h", **request.query_params})
    sources = board.sources()
    return rules_json(sources.store, sources.service, window.since, window.until, sources.describe, sources.export)


async def _page(request: Request, build: Any, render: Any, name: str, heading: str) -> Response:
    board: Dashboard = request.scope["shipway.dashboard"]
    data = await asyncio.to_thread(build, board, request)
    since = request.query_params.get("since", "1h")
    windows = WINDOWS if since in WINDOWS else (*WINDOWS, since)
    return page(
        request,
        "candidate.html",
        f"{board.service}: {heading}",
        heading=heading,
        section=Markup(render(data)),
        since=since,
        windows=windows,
        action=name,
    )


async def _api(request: Request, build: Any) -> Response:
    board: Dashboard = request.scope["shipway.dashboard"]
    data = await asyncio.to_thread(build, board, request)
    return Response(dumps(data), media_type="application/json", headers=PRIVATE)


async def candidate_page(request: Request) -> Response:
    return await _page(request, _data, candidate_html, "candidate", "model candidate")


async def candidate_api(request: Request) -> Response:
    return await _api(request, _data)


async def rules_page(request: Request) -> Response:
    return await _page(request, _rules_data, rules_html, "rules", "shadow rules")


async def rules_api(request: Request) -> Response:
    return await _api(request, _rules_data)
