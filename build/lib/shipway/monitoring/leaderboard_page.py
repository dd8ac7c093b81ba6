"""The dashboard's leaderboard page: the runs of a task ranked as `shipway leaderboard` ranks them.

GET {prefix}/leaderboard shows the newest task's leaderboard, ?task=NAME another task's, with
the project's reference rows (leaderboard.yaml) marked; {prefix}/api/leaderboard is the JSON.
"""

from __future__ import annotations

import asyncio
from html import escape
from typing import TYPE_CHECKING, Any

import orjson

from shipway.leaderboard import Row, task_rows
from shipway.monitoring.asgi import HTML, JSON, Send, respond
from shipway.monitoring.page import document

if TYPE_CHECKING:
    from shipway.monitoring.dashboard import Dashboard

__all__ = ["leaderboard_api", "leaderboard_page"]

_CSP = b"default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]


def _rows(dashboard: Dashboard, task: str | None) -> tuple[list[str], str | None, list[Row]]:
    store = dashboard.sources().store
    tasks = [t.name for t in store.list_tasks()]  # newest first
    chosen = task or (tasks[0] if tasks else None)
    rows = task_rows(store, chosen, dashboard.base_dir) if chosen else []
    return tasks, chosen, rows


def _figure(mean: float | None, spread: float | None) -> str:
    if mean is None:
        return ""
    return f"{mean:.4f}" + (f" ± {spread:.4f}" if spread else "")


def _table(rows: list[Row]) -> str:
    metric = escape(rows[0].metric if rows else "score")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "#",
            "recipe",
            "seeds",
            f"valid {metric}",
            f"test {metric}",
            "fit (s)",
            "latency (ms/item)",
            "size (MB)",
            "dataset",
            "commit",
            "reproduced",
        )
    )
    lines = []
    for rank, row in enumerate(rows, 1):
        commit = "" if row.commit is None else row.commit[:8] + (" (dirty)" if row.dirty else "")
        cells = [
            str(rank),
            escape(row.name) + (' <span class="meta">reference</span>' if row.reference else ""),
            str(row.seeds or ""),
            _figure(row.valid_mean, row.valid_std),
            _figure(row.test_mean, row.test_std),
            "" if row.fit_seconds is None else f"{row.fit_seconds:.1f}",
            "" if row.latency_ms is None else f"{row.latency_ms:.2f}",
            "" if row.model_bytes is None else f"{row.model_bytes / 1e6:.1f}",
            escape(row.dataset_version or ""),
            escape(commit or row.source),
            "yes" if row.reproduced else "",
        ]
        kind = "reference" if row.reference else "run"
        lines.append(f'<tr data-kind="{kind}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table>'


async def leaderboard_page(dashboard: Dashboard, send: Send, params: dict[str, str]) -> None:
    tasks, chosen, rows = await asyncio.to_thread(_rows, dashboard, params.get("task"))
    prefix = escape(dashboard.prefix)
    if chosen is None:
        body = "<section><h2>Leaderboard</h2><p>No task yet: `shipway try RECIPE...` makes runs to rank.</p></section>"
    else:
        options = "".join(
            f'<option value="{escape(t)}"{" selected" if t == chosen else ""}>{escape(t)}</option>' for t in tasks
        )
        body = (
            f'<section><h2>Leaderboard of <span id="task">{escape(chosen)}</span></h2>'
            f'<form method="get" action="{prefix}/leaderboard"><select name="task" aria-label="task">{options}'
            "</select> <button>show</button></form>"
            f"{_table(rows)}"
            '<p class="meta">Mean and spread (standard deviation) over seeds; reference rows are published '
            "results (leaderboard.yaml), which cannot be re-run here.</p></section>"
        )
    header = f'<header><h1><a href="{prefix}">{escape(dashboard.service)}</a>: leaderboard</h1></header>'
    html = document(f"{dashboard.service}: leaderboard", body, header=header, inline=False, base=dashboard.prefix + "/")
    await respond(send, 200, html.encode(), HTML, [(b"content-security-policy", _CSP), *_HEADERS])


async def leaderboard_api(dashboard: Dashboard, send: Send, params: dict[str, str]) -> None:
    tasks, chosen, rows = await asyncio.to_thread(_rows, dashboard, params.get("task"))
    data: dict[str, Any] = {"task": chosen, "tasks": tasks, "rows": [r.to_dict() for r in rows]}
    await respond(send, 200, orjson.dumps(data, default=str), JSON, _HEADERS)
