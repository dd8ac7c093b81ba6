"""The dashboard's leaderboard page: the runs of a task ranked as `shipway leaderboard` ranks them.

GET {prefix}/leaderboard shows the newest task's leaderboard, ?task=NAME another task's, with
the project's reference rows (leaderboard.yaml) marked; {prefix}/api/leaderboard is the JSON.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from shipway.leaderboard import Row, task_rows
from shipway.monitoring.dashboard.rendering import PRIVATE, page
from shipway.web import dumps

if TYPE_CHECKING:
    from shipway.monitoring.dashboard.app import Dashboard

__all__ = ["leaderboard_api", "leaderboard_page"]


def _rows(dashboard: Dashboard, task: str | None) -> tuple[list[str], str | None, list[Row]]:
    store = dashboard.sources().store
    tasks = [t.name for t in store.list_tasks()]  # newest first
    chosen = task or (tasks[0] if tasks else None)
    rows = task_rows(store, chosen, dashboard.base_dir) if chosen else []
    return tasks, chosen, rows


async def leaderboard_page(request: Request) -> Response:
    dashboard: Dashboard = request.scope["shipway.dashboard"]
    tasks, chosen, rows = await asyncio.to_thread(_rows, dashboard, request.query_params.get("task"))
    metric = rows[0].metric if rows else "score"
    head = ["#", "recipe", "seeds", f"valid {metric}", f"test {metric}", "fit (s)", "latency (ms/item)"]
    head += ["size (MB)", "dataset", "commit", "reproduced"]
    shown = [{"name": r.name, "reference": r.reference, "cells": r.cells()} for r in rows]
    context: dict[str, Any] = {"tasks": tasks, "chosen": chosen, "rows": shown, "head": head}
    return page(request, "leaderboard.html", f"{dashboard.service}: leaderboard", heading="leaderboard", **context)


async def leaderboard_api(request: Request) -> Response:
    dashboard: Dashboard = request.scope["shipway.dashboard"]
    tasks, chosen, rows = await asyncio.to_thread(_rows, dashboard, request.query_params.get("task"))
    data: dict[str, Any] = {"task": chosen, "tasks": tasks, "rows": [r.to_dict() for r in rows]}
    return Response(dumps(data), media_type="application/json", headers=PRIVATE)
