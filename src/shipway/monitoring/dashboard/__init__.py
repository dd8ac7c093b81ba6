"""The monitoring dashboard (a Starlette app at /dashboard) and the HTML report (report.py),
rendered from the same Jinja2 templates over the same snapshot of the store. Importing the
package imports neither Starlette nor Jinja2: the app is built on its first request."""

from shipway.monitoring.dashboard.app import Dashboard
from shipway.monitoring.dashboard.snapshot import Sources, Window

__all__ = ["Dashboard", "Sources", "Window"]
