"""Slack Block Kit pieces that stay within Slack's limits, whatever text they are given.

Slack's documented Block Kit limits:
https://docs.slack.dev/reference/block-kit/blocks (at most 50 blocks in a message),
https://docs.slack.dev/reference/block-kit/blocks/section-block (text at most 3000 characters;
  at most 10 fields, each at most 2000 characters),
https://docs.slack.dev/reference/block-kit/blocks/header-block (plain text, at most 150 characters),
https://docs.slack.dev/reference/block-kit/blocks/context-block (at most 10 elements).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "CONTEXT_ELEMENTS",
    "FIELD_TEXT",
    "HEADER_TEXT",
    "MAX_BLOCKS",
    "MAX_FIELDS",
    "MESSAGE_BUDGET",
    "SECTION_TEXT",
    "context",
    "cut",
    "escape",
    "header",
    "section",
]

MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
MAX_FIELDS = 10
FIELD_TEXT = 2000
CONTEXT_ELEMENTS = 10
# Slack also rejects messages whose blocks add up to more than about 13,000 characters
# (`msg_blocks_too_long`, reported in slackapi/bolt-js#2509), below its documented totals.
MESSAGE_BUDGET = 12_000


def escape(text: str) -> str:
    """`text` safe inside mrkdwn: Slack treats only &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> dict[str, Any]:
    """A header block (plain text, cut to Slack's 150 characters)."""
    return {"type": "header", "text": {"type": "plain_text", "text": cut(text, HEADER_TEXT), "emoji": True}}


def section(text: str | None = None, fields: Sequence[tuple[str, object]] = ()) -> dict[str, Any]:
    """A section of mrkdwn `text` and `(name, value)` fields; names and values are escaped and cut."""
    block: dict[str, Any] = {"type": "section"}
    if text is not None:
        block["text"] = {"type": "mrkdwn", "text": cut(text, SECTION_TEXT)}
    if fields:
        block["fields"] = [
            {"type": "mrkdwn", "text": cut(f"*{escape(str(name))}*\n{escape(str(value))}", FIELD_TEXT)}
            for name, value in fields[:MAX_FIELDS]
        ]
    return block


def context(texts: Sequence[str]) -> dict[str, Any]:
    """A context block of mrkdwn `texts` (at most 10, each cut to a section's length)."""
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": cut(t, SECTION_TEXT)} for t in texts[:CONTEXT_ELEMENTS]],
    }
