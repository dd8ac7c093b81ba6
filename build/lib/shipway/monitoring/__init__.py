"""Watching the live model: feedback, online metrics, drift, alerts, reports and the dashboard."""
