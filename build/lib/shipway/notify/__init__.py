"""Sending messages out: JSON webhooks with retries, and Slack Block Kit within Slack's limits.

A shared service: validation reports and monitoring alerts both send through it.

    delivery = post_json(url, {"text": "hello"})   # never raises; delivery.ok says how it went
"""

from shipway.notify.send import Delivery, post_json, redact_url
from shipway.notify.slack import (
    CONTEXT_ELEMENTS,
    FIELD_TEXT,
    HEADER_TEXT,
    MAX_BLOCKS,
    MAX_FIELDS,
    MESSAGE_BUDGET,
    SECTION_TEXT,
    context,
    cut,
    escape,
    header,
    section,
)

__all__ = [
    "CONTEXT_ELEMENTS",
    "FIELD_TEXT",
    "HEADER_TEXT",
    "MAX_BLOCKS",
    "MAX_FIELDS",
    "MESSAGE_BUDGET",
    "SECTION_TEXT",
    "Delivery",
    "context",
    "cut",
    "escape",
    "header",
    "post_json",
    "redact_url",
    "section",
]
