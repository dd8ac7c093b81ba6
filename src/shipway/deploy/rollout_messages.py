"""What a rollout decision tells Slack and the webhook: a Block Kit message and a JSON event.

Sending goes through `shipway.notify` (retries, never raises), as alerts and validation do.
"""

from __future__ import annotations

from typing import Any

from shipway.common.times import iso
from shipway.notify import Delivery, context, escape, header, post_json, section

__all__ = ["notify_decision", "slack_message", "webhook_payload"]

_TITLES = {
    "started": "Rollout started",
    "advanced": "Rollout advanced",
    "promoted": "Candidate promoted",
    "rolled_back": "ROLLED BACK",
    "aborted": "Rollout aborted",
}


def webhook_payload(event: dict[str, Any]) -> dict[str, Any]:
    """The generic webhook's JSON: `{"event": "shipway.rollout", "action", "service", "version", ...}`."""
    return {"event": "shipway.rollout", **event}


def slack_message(event: dict[str, Any]) -> dict[str, Any]:
    """A Block Kit message within Slack's limits (shipway.notify.slack)."""
    title = f"{_TITLES.get(event['action'], event['action'])}: {event['service']} {event['version']}"
    fields: list[tuple[str, object]] = [
        ("Service", event["service"]),
        ("Candidate", event["version"]),
        ("Step", event.get("step") or "-"),
        ("By", event.get("actor") or "-"),
        ("When", iso(float(event.get("ts") or 0.0))),
    ]
    figures = event.get("figures") or {}
    for name in ("error_rate", "latency_p99_ms", "agreement", "accuracy"):
        if figures.get(name) is not None:
            fields.append((name, f"{figures[name]:.4g}"))
    blocks = [header(title), section(escape(event.get("reason") or "-"), fields)]
    breaches = event.get("breaches") or []
    if breaches:
        blocks.append(section("*Guards breached*\n" + "\n".join(f"• {escape(b['message'])}" for b in breaches[:10])))
    blocks.append(context([f"generation {event.get('generation', '-')} · shipway rollout status for the details"]))
    return {"text": title, "blocks": blocks}


def notify_decision(event: dict[str, Any], *, slack: str = "", webhook: str = "") -> list[Delivery]:
    """Send `event` to the configured channels; one Delivery per URL (never raises)."""
    deliveries = []
    if slack:
        deliveries.append(post_json(slack, slack_message(event)))
    if webhook:
        deliveries.append(post_json(webhook, webhook_payload(event)))
    return deliveries
