"""The shared sending service: Block Kit pieces that keep Slack's limits, whatever they are given.

Slack's documented limits (docs.slack.dev/reference/block-kit): a header's plain text at most 150
characters; a section's text at most 3000, and at most 10 fields of at most 2000 each; a context
block at most 10 elements. post_json's retries are tested against a live receiver in
test_validation_notify.py.
"""

from __future__ import annotations

import pytest

from shipway.notify import Delivery, context, cut, escape, header, redact_url, section


def test_escape_only_touches_slacks_control_characters() -> None:
    assert escape("a < b && c > d *bold* _it_") == "a &lt; b &amp;&amp; c &gt; d *bold* _it_"


@pytest.mark.parametrize("size", [0, 149, 150, 151, 10_000])
def test_pieces_stay_within_the_limits(size: int) -> None:
    text = "y" * size
    assert len(header(text)["text"]["text"]) == min(size, 150)
    block = section(text, [(f"name {i}", text) for i in range(25)])
    assert len(block["text"]["text"]) == min(size, 3000)
    assert len(block["fields"]) == 10 and all(len(f["text"]) <= 2000 for f in block["fields"])
    assert len(context([text] * 20)["elements"]) == 10


def test_cut_marks_what_it_cut() -> None:
    assert cut("abcdef", 6) == "abcdef"
    assert cut("abcdefg", 6) == "abcde…" and len(cut("abcdefg", 6)) == 6


def test_fields_are_escaped_and_bold() -> None:
    (field,) = section(fields=[("p<99>", "3 & 4")])["fields"]
    assert field == {"type": "mrkdwn", "text": "*p&lt;99&gt;*\n3 &amp; 4"}
    assert "text" not in section(fields=[("a", 1)])


def test_urls_lose_their_secret_path() -> None:
    assert redact_url("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/…"
    assert redact_url("https://example.com") == "https://example.com"
    assert Delivery("u", True, 1, 200).to_dict() == {
        "url": "u",
        "ok": True,
        "attempts": 1,
        "status": 200,
        "error": None,
    }
