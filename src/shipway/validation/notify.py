"""Validation reports sent out: a Slack message (incoming webhook, Block Kit) and a generic JSON webhook.

The sending itself (retries, backoff, `Delivery`) and Slack's limits live in the shared
`shipway.notify` service; this module turns a report into the messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shipway.expect.fields import shorten
from shipway.notify import (
    CONTEXT_ELEMENTS,
    FIELD_TEXT,
    HEADER_TEXT,
    MAX_BLOCKS,
    MAX_FIELDS,
    SECTION_TEXT,
    Delivery,
    post_json,
    redact_url,
)
from shipway.notify import cut as _cut
from shipway.notify import escape as _escape
from shipway.validation.rendering import ids_line
from shipway.validation.results import CaseResult, Changes, Report

__all__ = ["Delivery", "notify", "post_json", "redact_url", "slack_message", "webhook_payload"]

# Slack rejects messages whose blocks add up to more than about 13,000 characters (see
# shipway.notify.slack); the case sections share this part of it.
CASES_BUDGET = 10_000
CASE_TEXT = 1500  # one case's section: enough for its expectation, what was seen and the cause


def _name(report: Report) -> str:
    return str(report.ids.get("service") or (report.targets[0]["target"] if report.targets else "service"))


def _case_block(r: CaseResult) -> dict[str, Any]:
    where = f"  `{r.file.rsplit('/', 1)[-1]}:{r.line}`" if r.file else ""
    lines = [f"*{_escape(r.suite)} › {_escape(r.case)}*{where}"]
    if r.status == "xpass":
        lines.append("passes again (it was marked expect_failure or was failing before)")
    elif r.status == "passed":
        lines.append("passes again")
    else:
        lines.append(f"> input: {_escape(shorten(r.inputs[0], 200))}")
        bad = next((c for c in r.checks if not c.passed), None)
        if bad is not None:
            lines.append(f"> expects *{_escape(bad.expectation)}*; {_escape(bad.message)}")
        if r.diagnosis is not None:
            lines.append(f"*cause:* {_escape(r.diagnosis.summary)}")
    text = _cut("\n".join(lines), min(CASE_TEXT, SECTION_TEXT))
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_message(report: Report, changes: Changes | None = None, title: str | None = None) -> dict[str, Any]:
    """A Block Kit message: a header, the counts, the versions, then the cases worth reading.

    With `changes` (a scheduled run), the cases are those that newly fail or newly pass;
    otherwise the failing ones. Cases beyond what fits are counted in a last line.
    """
    counts = report.counts
    failing = counts["failed"] + counts["error"]
    mark = ":white_check_mark:" if report.ok else ":x:"
    headline = title or (f"{_name(report)}: {failing} failing" if failing else f"{_name(report)}: all passing")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"{headline}", HEADER_TEXT), "emoji": True}},
    ]
    fields = [
        ("Passed", counts["passed"]),
        ("Failed", counts["failed"]),
        ("Errors", counts["error"]),
        ("Expected failures", counts["xfail"]),
        ("Unexpected passes", counts["xpass"]),
        ("Time", f"{report.seconds:.2f} s"),
    ]
    if changes is not None:
        fields += [("Newly failing", len(changes.newly_failing)), ("Newly passing", len(changes.newly_passing))]
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{mark} {_escape(report.summary())}"},
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{name}*\n{value}", FIELD_TEXT)}
                for name, value in fields[:MAX_FIELDS]
            ],
        }
    )
    versions = [
        {"type": "mrkdwn", "text": _cut(_escape(f"{t['target']}: {ids_line(t['ids']) or 'no ids'}"), SECTION_TEXT)}
        for t in report.targets
    ]
    if versions:
        blocks.append({"type": "context", "elements": versions[:CONTEXT_ELEMENTS]})
    if changes is not None:
        shown = [*changes.newly_failing, *changes.newly_passing]
    else:
        shown = [r for r in report.results if r.failing]
    if shown:
        blocks.append({"type": "divider"})
    budget = CASES_BUDGET
    room = MAX_BLOCKS - len(blocks) - 1  # one block kept for the "and N more" line
    placed = 0
    for r in shown:
        block = _case_block(r)
        size = len(block["text"]["text"])
        if placed >= room or size > budget:
            break
        blocks.append(block)
        budget -= size
        placed += 1
    if placed < len(shown):
        more = f"…and {len(shown) - placed} more; the JSON report (`--json`) has every case with its diagnosis."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    text = f"{headline}: {report.summary()}"  # the notification's plain-text fallback
    return {"text": _cut(text, SECTION_TEXT), "blocks": blocks}


def webhook_payload(report: Report, changes: Changes | None = None) -> dict[str, Any]:
    """The generic webhook's JSON: the counts, versions, changes and every failing case in full."""
    return {
        "event": "shipway.validation",
        "ok": report.ok,
        "summary": report.summary(),
        "counts": report.counts,
        "targets": report.targets,
        "started_at": report.started_at,
        "seconds": round(report.seconds, 4),
        "changes": changes.to_dict() if changes is not None else None,
        "failing": [r.to_dict() for r in report.results if r.failing],
        "newly_passing": [r.id for r in changes.newly_passing] if changes is not None else [],
    }


def notify(
    report: Report,
    *,
    slack: str | None = None,
    webhook: str | None = None,
    changes: Changes | None = None,
    retries: int = 3,
    timeout_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send the report to Slack and/or a JSON webhook; one Delivery per URL."""
    out = []
    if slack:
        message = slack_message(report, changes)
        out.append(post_json(slack, message, retries=retries, timeout_s=timeout_s, sleep=sleep))
    if webhook:
        payload = webhook_payload(report, changes)
        out.append(post_json(webhook, payload, retries=retries, timeout_s=timeout_s, sleep=sleep))
    return out
