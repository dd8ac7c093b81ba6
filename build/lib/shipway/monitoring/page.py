"""The HTML document around the panels: one shell for the dashboard and the report.

The report inlines the stylesheet, the script and plotly.js so that the file makes no
request at all; the dashboard links them from its own routes, so that its pages need no
inline script and a strict Content-Security-Policy holds.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson

from shipway.monitoring.panels import esc

__all__ = ["asset", "document", "json_script"]


@cache
def asset(name: str) -> str:
    """A file shipped in shipway/monitoring/static."""
    return resources.files("shipway.monitoring").joinpath("static", name).read_text(encoding="utf-8")


def json_script(element_id: str, data: Any) -> str:
    """Data for the page's script, in a <script type="application/json"> that no value can end:
    `<`, `>` and `&` are written as JSON escapes, so `</script>` in customer text stays text."""
    text = orjson.dumps(data, default=str).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def document(
    title: str,
    body: str,
    *,
    header: str = "",
    figures: dict[str, Any] | None = None,
    inline: bool,
    base: str = "",
    body_attrs: dict[str, str] | None = None,
    plotly: str | None = None,
) -> str:
    """A whole page. `inline`: the report's self-contained form (needs `plotly`, the bundle);
    otherwise assets are linked under `base` (e.g. "/dashboard/")."""
    if inline:
        head_assets = f"<style>{asset('monitoring.css')}</style>"
        scripts = f"<script>{plotly or ''}</script><script>{asset('monitoring.js')}</script>"
    else:
        head_assets = f'<link rel="stylesheet" href="{esc(base)}static/monitoring.css">'
        scripts = f'<script src="{esc(base)}plotly.js"></script><script src="{esc(base)}static/monitoring.js"></script>'
    attrs = "".join(f' {esc(k)}="{esc(v)}"' for k, v in (body_attrs or {}).items())
    data = json_script("figures", figures) if figures is not None else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f'<meta name="referrer" content="no-referrer"><title>{esc(title)}</title>{head_assets}</head>'
        f'<body{attrs}>{header}<main id="panels">{body}</main>{data}{scripts if figures is not None else ""}'
        "</body></html>\n"
    )
