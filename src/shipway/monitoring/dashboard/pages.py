"""The dashboard's pages and assets: the panels, their refresh, one prediction, and the files
the pages load (stylesheet, script, plotly.js), cached by the browser and revalidated by ETag."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from shipway.errors import ConfigError
from shipway.monitoring.dashboard import params
from shipway.monitoring.dashboard.figures import plotly_path
from shipway.monitoring.dashboard.panels import render_panels
from shipway.monitoring.dashboard.predictions import find_record, prediction_context
from shipway.monitoring.dashboard.rendering import PRIVATE, SAFE, error, page
from shipway.web import dumps

if TYPE_CHECKING:
    from shipway.monitoring.dashboard.app import Dashboard

__all__ = ["Assets", "Plotly", "dashboard", "panels", "prediction"]

logger = logging.getLogger("shipway.monitoring")

WINDOWS = ("1h", "6h", "24h", "7d", "30d")
ASSET_HEADERS = {"cache-control": "public, max-age=86400", **SAFE}


async def dashboard(request: Request) -> Response:
    board: Dashboard = request.scope["shipway.dashboard"]
    q = request.query_params
    window, by = params.window(q), params.by(q)
    snap = await asyncio.to_thread(board.snapshot, window, by)
    body, figures = render_panels(snap, trace_base=f"{board.prefix}/predictions/")
    since = q.get("since", "24h")
    context: dict[str, Any] = {
        "panels": body,
        "figures": figures,
        "digest": _digest(body),
        "refresh_s": board.refresh_s,
        "since": since,
        "by": q.get("by", "model_version"),
        "windows": WINDOWS if since in WINDOWS else (*WINDOWS, since),
    }
    return page(request, "dashboard.html", f"{board.service}: shipway dashboard", **context)


async def panels(request: Request) -> Response:
    """The panels' HTML and figures, as the page's script refreshes them."""
    board: Dashboard = request.scope["shipway.dashboard"]
    window, by = params.window(request.query_params), params.by(request.query_params)
    snap = await asyncio.to_thread(board.snapshot, window, by)
    body, figures = render_panels(snap, trace_base=f"{board.prefix}/predictions/")
    data = {
        "html": body,
        "digest": _digest(body),
        "figures": figures,
        "generated": snap["generated"],
        "window": window.to_dict(),
    }
    return Response(dumps(data), media_type="application/json", headers=PRIVATE)


async def prediction(request: Request) -> Response:
    """One logged prediction, and its trace re-run by the host's pipeline when it offers one."""
    board: Dashboard = request.scope["shipway.dashboard"]
    rid = request.path_params["request_id"]
    ts = params.query_float(request.query_params, "ts")
    record = await asyncio.to_thread(find_record, board.sources(), rid, ts)
    if record is None:
        message = f"no logged prediction of {board.service!r} has request id {rid!r}"
        return error(404, "not_found", message, request=request)
    trace_fn = request.scope.get("shipway.trace")
    trace: dict[str, Any] | None = None
    trace_error = None
    if trace_fn is not None:
        try:
            trace = await trace_fn(record.inputs)
        except Exception as err:  # the page still shows the record
            logger.exception("re-running a logged prediction for its trace failed")
            trace_error = f"{type(err).__name__}: {err}"
    context = prediction_context(record, trace, trace_error, host_can_trace=trace_fn is not None)
    return page(request, "prediction.html", f"{rid}: shipway dashboard", **context)


class Assets(StaticFiles):
    """The package's static files, cached a day by the browser and revalidated by ETag."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(ASSET_HEADERS)
        return response


class Plotly:
    """plotly.js, from inside the plotly package (no CDN), served as the other assets are."""

    def __init__(self) -> None:
        self._files: Assets | None = None
        self._name = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._files is None:
            try:
                path: Path = await asyncio.to_thread(plotly_path)
            except ConfigError as err:
                return await error(404, "not_found", str(err))(scope, receive, send)
            self._files, self._name = Assets(directory=path.parent), path.name
        await self._files({**scope, "path": "/" + self._name, "root_path": ""}, receive, send)


def _digest(html: str) -> str:
    """Names the panels' HTML, so that a refresh replaces it only when it changed."""
    return hashlib.sha256(html.encode()).hexdigest()[:16]
