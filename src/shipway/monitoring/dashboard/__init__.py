"""The monitoring dashboard (a Starlette app at /dashboard) and the HTML report, rendered from
the same Jinja2 templates over the same snapshot of the store. See app.py for the routes."""

from shipway.monitoring.dashboard.app import Dashboard
from shipway.monitoring.dashboard.report import build_report, write_report
from shipway.monitoring.dashboard.snapshot import Sources, Window

__all__ = ["Dashboard", "Sources", "Window", "build_report", "write_report"]
