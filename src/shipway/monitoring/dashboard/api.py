"""The dashboard's JSON API: the same numbers as the page, from the same snapshot functions."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from shipway.monitoring.dashboard import params
from shipway.monitoring.dashboard.rendering import PRIVATE, error
from shipway.monitoring.dashboard.snapshot import (
    alerts_json,
    metrics_json,
    predictions_json,
    validation_json,
    versions_json,
)
from shipway.web import dumps

if TYPE_CHECKING:
    from shipway.monitoring.dashboard.app import Dashboard

__all__ = ["NAMES", "answer"]

NAMES = ("metrics", "drift", "alerts", "predictions", "validation", "versions")


async def answer(request: Request) -> Response:
    """GET {prefix}/api/{name}: metrics, drift, alerts, predictions or validation."""
    board: Dashboard = request.scope["shipway.dashboard"]
    name, q = request.path_params["name"], request.query_params
    window = params.window(q)
    result: Any
    if name == "metrics":
        result = await asyncio.to_thread(metrics_json, board.sources(), window, params.by(q))
    elif name == "drift":
        result = await asyncio.to_thread(board.drift, window)
    elif name == "alerts":
        limit = params.query_int(q, "limit", 50, 1000)
        result = {"events": await asyncio.to_thread(alerts_json, board.sources(), window, limit)}
    elif name == "predictions":
        order, limit = q.get("order", "slowest"), params.query_int(q, "limit", 10, 1000)
        rows = await asyncio.to_thread(predictions_json, board.sources(), window, order, limit)
        result = {"order": order, "predictions": rows}
    elif name == "versions":
        result = {"versions": await asyncio.to_thread(versions_json, board.sources(), window)}
    elif name == "validation":
        result = await asyncio.to_thread(validation_json, board.sources())
    else:
        return error(404, "not_found", f"no API {name!r}; the APIs are {', '.join(NAMES)}, leaderboard")
    return Response(dumps(result), media_type="application/json", headers=PRIVATE)
