"""Reports sent out: a Slack message (incoming webhook, Block Kit) and a generic JSON webhook.

A webhook that fails or times out is retried with backoff, then reported in
the returned `Delivery`; sending never raises, so it never breaks a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from shipway.expect.fields import shorten
from shipway.validation.report import ids_line
from shipway.validation.results import CaseResult, Changes, Report

__all__ = ["Delivery", "notify", "post_json", "slack_message", "webhook_payload"]

# Slack's documented Block Kit limits, which the message is built to stay within:
# https://docs.slack.dev/reference/block-kit/blocks (at most 50 blocks in a message),
# https://docs.slack.dev/reference/block-kit/blocks/section-block (text at most 3000 characters;
#   at most 10 fields, each at most 2000 characters),
# https://docs.slack.dev/reference/block-kit/blocks/header-block (plain text, at most 150 characters),
# https://docs.slack.dev/reference/block-kit/blocks/context-block (at most 10 elements).
MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
MAX_FIELDS = 10
FIELD_TEXT = 2000
CONTEXT_ELEMENTS = 10
# Slack also rejects messages whose blocks add up to more than about 13,000 characters
# (`msg_blocks_too_long`, reported in slackapi/bolt-js#2509), below its documented totals;
# the case sections share this budget.
CASES_BUDGET = 10_000
CASE_TEXT = 1500  # one case's section: enough for its expectation, what was seen and the cause


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one post went. `url` has its secret part hidden."""

    url: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "attempts": self.attempts, "status": self.status, "error": self.error}


def _escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def redact_url(url: str) -> str:
    # Incoming-webhook URLs carry their secret in the path; show only where they point.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") else url


def post_json(
    url: str,
    payload: Any,
    *,
    retries: int = 3,
    backoff_s: float = 0.5,
    timeout_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST JSON, retrying timeouts, connection errors, 429 and 5xx with exponential backoff.

    Other 4xx answers are not retried (the payload or URL is wrong). Never raises.
    """
    import httpx

    body = orjson.dumps(payload, default=str)
    status: int | None = None
    error: str | None = None
    attempts = 0
    for attempt in range(retries + 1):
        attempts = attempt + 1
        wait = backoff_s * 2**attempt
        try:
            response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=timeout_s)
            status = response.status_code
            if status < 300:
                return Delivery(redact_url(url), True, attempts, status)
            error = f"HTTP {status}: {response.text[:200]}"
            if status != 429 and status < 500:
                break
            retry_after = response.headers.get("retry-after", "")
            if status == 429 and retry_after.isdigit():
                wait = max(wait, min(float(retry_after), 30.0))
        except Exception as err:  # timeouts, refused connections, bad URLs: report, never raise
            status, error = None, f"{type(err).__name__}: {err}"
            if isinstance(err, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
                break
        if attempt < retries:
            sleep(min(wait, 30.0))
    return Delivery(redact_url(url), False, attempts, status, error)


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
