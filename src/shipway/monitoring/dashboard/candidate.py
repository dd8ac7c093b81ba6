"""The dashboard's model-candidate page: the candidate against the live version over the window
(the numbers `shipway rollout compare` prints and the rollout guards judge).

GET {prefix}/candidate?since=1h shows it; {prefix}/api/candidate is the JSON.
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
from shipway.web import dumps

if TYPE_CHECKING:
    from shipway.monitoring.dashboard.app import Dashboard

__all__ = ["candidate_api", "candidate_page"]

WINDOWS = ("15m", "1h", "6h", "24h", "7d")


def _data(board: Dashboard, request: Request) -> dict[str, Any]:
    window = params.window({"since": "1h", **request.query_params})
    sources = board.sources()
    return candidate_json(sources.store, sources.service, window.since, window.until, sources.describe)


async def candidate_page(request: Request) -> Response:
    board: Dashboard = request.scope["shipway.dashboard"]
    data = await asyncio.to_thread(_data, board, request)
    since = request.query_params.get("since", "1h")
    windows = WINDOWS if since in WINDOWS else (*WINDOWS, since)
    title = f"{board.service}: model candidate"
    return page(
        request,
        "candidate.html",
        title,
        heading="model candidate",
        section=Markup(candidate_html(data)),
        since=since,
        windows=windows,
    )


async def candidate_api(request: Request) -> Response:
    board: Dashboard = request.scope["shipway.dashboard"]
    data = await asyncio.to_thread(_data, board, request)
    return Response(dumps(data), media_type="application/json", headers=PRIVATE)
