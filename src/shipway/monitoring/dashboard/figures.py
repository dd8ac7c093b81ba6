"""The figure format every dashboard plot shares: plotly.js's JSON (https://plotly.com/javascript/reference/),
the layout that keeps titles clear of the toolbar and legends clear of the axes, and the bundle.

Why plotly: the dashboard's plots are for looking closely (hover a point for its value,
zoom on an incident, hide a version in the legend), which static SVG from matplotlib
cannot offer; plotly.js renders SVG in the browser, and its bundle ships inside the
`plotly` Python package, so the report inlines it and the dashboard serves it without a
CDN. Figures are plain dicts rather than plotly's Python graph objects: the service never
imports plotly's validators to answer a request, and only `plotly_path()` needs the package.
"""

from __future__ import annotations

import importlib.util
from html import escape
from pathlib import Path
from typing import Any

from shipway.errors import ConfigError

__all__ = [
    "COLOURS",
    "GREY",
    "TOOLBAR_PX",
    "Figure",
    "base_layout",
    "empty_figure",
    "plot_text",
    "plotly_js",
    "plotly_path",
    "with_legend",
]

Figure = dict[str, Any]  # {"data": [traces], "layout": {...}} as plotly.js takes them

# A qualitative palette that stays readable for the common colour-vision deficiencies
# (Okabe and Ito, "Color Universal Design", 2008).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
GREY = "#999999"
# The legend's room, in CSS pixels: a row of entries, an entry's symbol and gap, a character of
# its 12 px name (generous), the narrowest plot (the page's grid cells are at least 420 px),
# the x tick labels (two lines on a date axis) and an axis title.
_LEGEND_ROW_PX, _LEGEND_ENTRY_PX, _CHAR_PX, _NARROWEST_PX = 22, 46, 7.5, 400
_TICKS_PX, _AXIS_TITLE_PX = 44, 22


def plotly_path() -> Path:
    """The plotly.js bundle shipped inside the plotly package (no CDN, no network)."""
    try:
        spec = importlib.util.find_spec("plotly")
    except ImportError:
        spec = None
    origin = Path(spec.origin).parent / "package_data" / "plotly.min.js" if spec and spec.origin else None
    if origin is None or not origin.is_file():
        raise ConfigError(
            "the monitoring plots need plotly, which is not installed (or ships no plotly.min.js); "
            "install it with pip install 'shipway[monitoring]'"
        )
    return origin


def plotly_js() -> str:
    """The plotly.js bundle's text, for the report to inline."""
    return plotly_path().read_text(encoding="utf-8")


# plotly.js draws its toolbar (the "modebar") in the top right corner of each plot, about 26 px
# high: titles sit below that band, so a long title is never under it.
TOOLBAR_PX = 30


def base_layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        # Right above the plot area, pushing the top margin as far as the title needs.
        "title": {
            "text": title,
            "font": {"size": 14},
            "x": 0,
            "xanchor": "left",
            "xref": "container",
            "y": 1,
            "yanchor": "bottom",
            "yref": "paper",
            "pad": {"b": 8, "l": 8},
            "automargin": True,
        },
        "height": 300,
        "margin": {"l": 56, "r": 56, "t": TOOLBAR_PX + 26, "b": 40},
        "hovermode": "x unified",
        "colorway": list(COLOURS),
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "uirevision": "keep",  # a refresh keeps the reader's zoom and hidden traces
    }
    layout.update(extra)
    return layout


def with_legend(figure: Figure, axis_title: bool = False) -> Figure:
    """`figure` with its legend at the foot of the figure, under the tick labels (and the x axis
    title), in as many rows as its names need at the narrowest plot width: the bottom margin is
    made that tall, since plotly.js does not make room for a legend placed on the container."""
    names = [str(t.get("name", "")) for t in figure["data"] if t.get("showlegend", True)]
    if len(names) < 2:
        return figure
    per_row = max(1, int(_NARROWEST_PX // (_LEGEND_ENTRY_PX + _CHAR_PX * max(len(n) for n in names))))
    rows = -(-len(names) // per_row)
    layout = figure["layout"]
    room = _LEGEND_ROW_PX * rows + 8
    layout["legend"] = {
        "orientation": "h",
        "x": 0,
        "xref": "container",
        "y": 0,
        "yref": "container",
        "yanchor": "bottom",
    }
    layout["margin"]["b"] = _TICKS_PX + (_AXIS_TITLE_PX if axis_title else 0) + room
    layout["height"] = layout.get("height", 300) + room
    return figure


def empty_figure(title: str, message: str) -> Figure:
    """A figure that says why there is nothing to plot, rather than empty axes."""
    return {
        "data": [],
        "layout": base_layout(
            title,
            height=160,
            xaxis={"visible": False},
            yaxis={"visible": False},
            annotations=[{"text": message, "showarrow": False, "font": {"size": 13, "color": "#666"}}],
        ),
    }


def plot_text(value: Any) -> str:
    """User data placed in plot text. plotly.js reads a subset of HTML there (<a href>, <b>,
    entities) and decodes entities, so `<`, `>` and `&` are escaped to show as typed."""
    return escape(str(value), quote=False)
