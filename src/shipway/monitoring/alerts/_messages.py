"""What an alert says when it fires or recovers: a Slack Block Kit message and a webhook's JSON.

Slack's limits are kept by the helpers of `shipway.notify.slack`; every piece here is also
cut to a share of Slack's ~13,000-character message total, so a long rule name, description
or list of versions shortens the message instead of getting it refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipway.notify import Delivery, context, cut, escape, header, post_json, section

if TYPE_CHECKING:
    from shipway.monitoring.alerts.alert_rules import Channel
    from shipway.monitoring.alerts.alerter import Evaluation

__all__ = ["send", "slack_alert", "webhook_alert"]

ICONS = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
FIELD_SHARE = 500  # each field's text: 8 fields stay far below the message total
TEXT_SHARE = 2500
VERSIONS_SHOWN = 5


def send(
    e: Evaluation,
    channels: Sequence[Channel],
    dashboard_url: str = "",
    *,
    retries: int = 3,
    timeout_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Post the alert to each channel; one Delivery each. Never raises."""
    out = []
    for channel in channels:
        if channel.unset is not None and channel.optional:
            continue  # off where its secret is not set, as the file asked
        if channel.unset is not None:
            error = f"not sent: the {channel.kind} URL needs ${{{channel.unset}}}, which is not set in the environment"
            out.append(Delivery(f"channel {channel.name}", False, 0, None, error))
            continue
        payload = slack_alert(e, dashboard_url) if channel.kind == "slack" else webhook_alert(e, dashboard_url)
        out.append(post_json(channel.url, payload, retries=retries, timeout_s=timeout_s, sleep=sleep))
    return out


def slack_alert(e: Evaluation, dashboard_url: str = "") -> dict[str, Any]:
    """A Block Kit message: what fired (or recovered), the value against the threshold, the
    window, the sample, the versions that served, and a link to the dashboard."""
    rule = e.rule
    resolved = e.status == "resolved"
    label = "RESOLVED" if resolved else rule.severity.upper()
    icon = ":white_check_mark:" if resolved else ICONS.get(rule.severity, ":warning:")
    title = f"{label} · {e.service}: {rule.name}"
    value = "no value" if e.value is None else _number(e.value)
    threshold = f"{rule.comparison} {_number(rule.threshold)}"
    if resolved:
        text = f"*{escape(rule.metric.name)}* is back at *{value}* over the last {escape(rule.window)}"
        text += f" (the alert fires {threshold})."
        if e.firing_since is not None:
            text += f" It had been firing since {_clock(e.firing_since)}, for {_duration(e.until - e.firing_since)}."
    else:
        text = f"*{escape(rule.metric.name)}* is *{value}*, {threshold.replace(' ', ' the threshold ', 1)}"
        text += f", over the last {escape(rule.window)}."
    if rule.description:
        text += "\n> " + escape(cut(rule.description, 1000)).replace("\n", "\n> ")
    fields = [
        ("Value", value),
        ("Threshold", threshold),
        ("Window", f"{rule.window}: {_clock(e.since)} to {_clock(e.until)}"),
        ("Sample", _sample(e)),
        ("Severity", rule.severity),
        ("Model version", _versions(e, "model_version")),
        ("Rules version", _versions(e, "rules_version")),
    ]
    notes = [
        f"alert rule `{escape(cut(rule.where or rule.name, 300))}` · metric `{escape(cut(rule.metric.name, 300))}`"
    ]
    if dashboard_url:
        notes.append(f"<{escape(cut(dashboard_url, 1000))}|Open the dashboard>")
    blocks = [
        header(f"{icon} {title}"),
        section(cut(f"{icon} {text}", TEXT_SHARE), [(name, cut(str(v), FIELD_SHARE)) for name, v in fields]),
        context(notes),
    ]
    fallback = f"{label}: {e.service}: {rule.name}: {rule.metric.name} = {value} ({threshold}) over {rule.window}"
    return {"text": cut(fallback, 3000), "blocks": blocks}


def webhook_alert(e: Evaluation, dashboard_url: str = "") -> dict[str, Any]:
    """The generic webhook's JSON: the evaluation in full, the rule, and the dashboard link."""
    detail = {k: v for k, v in e.to_dict().items() if k != "deliveries"}
    return {"event": "shipway.alert", **detail, "rule": e.rule.to_dict(), "dashboard_url": dashboard_url or None}


def _number(value: float) -> str:
    return f"{value:.4g}"


def _sample(e: Evaluation) -> str:
    return f"{e.requests} requests, {e.labelled} labelled"


def _versions(e: Evaluation, key: str) -> str:
    seen = e.versions.get(key) or []
    if not seen:
        return "none" if key == "rules_version" and key in e.versions else "unknown"
    more = f" and {len(seen) - VERSIONS_SHOWN} more" if len(seen) > VERSIONS_SHOWN else ""
    return ", ".join(cut(v, 80) for v in seen[:VERSIONS_SHOWN]) + more


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
