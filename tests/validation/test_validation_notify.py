"""Reports to Slack and to a JSON webhook, against a real HTTP server on localhost.

Slack's Block Kit limits checked here, from docs.slack.dev/reference/block-kit: at most 50
blocks in a message; a header's plain text at most 150 characters; a section's text at most
3000, and at most 10 fields of at most 2000 each; a context block at most 10 elements.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import free_port

from shipway.notify import post_json
from shipway.validation import CaseResult, Changes, Check, Diagnosis, Report, notify, slack_message, webhook_payload


class Recorder:
    """A webhook receiver on localhost: records each POST; answers as `script` says, in order
    ("ok", "500", "404", "429", or "slow" to answer after the client's timeout), then "ok"."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.script: list[str] = []
        self.slow_s = 1.0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                recorder.posts.append({"path": self.path, "body": json.loads(body), "at": time.monotonic()})
                action = recorder.script.pop(0) if recorder.script else "ok"
                if action == "slow":
                    time.sleep(recorder.slow_s)
                    action = "ok"
                status = {"ok": 200, "500": 500, "404": 404, "429": 429}[action]
                self.send_response(status)
                if status == 429:
                    self.send_header("retry-after", "0")
                self.send_header("content-length", "2")
                self.end_headers()
                try:
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up waiting: what a timeout test wants
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


def failing(i: int, size: int = 1) -> CaseResult:
    diagnosis = Diagnosis("before-stage", "truncate", "the input was changed by stage 'truncate' " + "x" * size)
    check = Check("label = card_arrival", False, "label is 'card_linking' (0.07) <&>")
    name = f"case {i} " + "n" * size
    return CaseResult(
        "intents", name, "failed", [check], [{"text": "t" * size}], [{}], diagnosis, file="/p/v/i.yaml", line=i
    )


def report_of(results: list[CaseResult]) -> Report:
    ids = {"service": "banking77", "model_version": "m-1", "rules_version": "r-1", "dataset_version": "d-1"}
    return Report(results, [{"target": "http://127.0.0.1:8000", "ids": ids}], time.time(), 0.5)


def check_block_kit(message: dict[str, Any]) -> None:
    blocks = message["blocks"]
    assert 1 <= len(blocks) <= 50
    assert isinstance(message["text"], str) and message["text"]
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        elif block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
        else:
            assert block["type"] == "divider"
    # Below the undocumented total at which Slack answers msg_blocks_too_long.
    assert sum(len(json.dumps(b)) for b in blocks) < 13_000


def test_slack_message_summary() -> None:
    passed = CaseResult("intents", "ok", "passed", [Check("label = a", True, "label is 'a'")], [{}], [{}])
    message = slack_message(report_of([passed, failing(1)]))
    check_block_kit(message)
    header, counts, versions, divider, case = message["blocks"]
    assert header["text"]["text"] == "banking77: 1 failing"
    assert counts["text"]["text"].startswith(":x: 1 passed, 1 failed")
    assert {"type": "mrkdwn", "text": "*Failed*\n1"} in counts["fields"]
    assert versions["elements"][0]["text"] == "http://127.0.0.1:8000: model m-1  rules r-1  dataset d-1"
    assert divider == {"type": "divider"}
    text = case["text"]["text"]
    assert text.startswith("*intents › case 1 n*  `i.yaml:1`")
    assert "label is 'card_linking' (0.07) &lt;&amp;&gt;" in text  # mrkdwn control characters escaped
    assert "*cause:* the input was changed by stage 'truncate'" in text
    assert message["text"].startswith("banking77: 1 failing: 1 passed, 1 failed")


def test_slack_message_all_passing() -> None:
    passed = CaseResult("intents", "ok", "passed", [Check("label = a", True, "label is 'a'")], [{}], [{}])
    message = slack_message(report_of([passed]))
    check_block_kit(message)
    assert message["blocks"][0]["text"]["text"] == "banking77: all passing"
    assert all(b["type"] != "divider" for b in message["blocks"])


@pytest.mark.parametrize(("count", "size"), [(200, 1), (30, 5000), (60, 400)])
def test_slack_message_stays_within_block_kit_limits(count: int, size: int) -> None:
    message = slack_message(report_of([failing(i, size) for i in range(count)]), title="t" * 500)
    check_block_kit(message)
    last = message["blocks"][-1]
    assert last["type"] == "context" and last["elements"][0]["text"].startswith("…and ")
    shown = sum(1 for b in message["blocks"] if b["type"] == "section" and "fields" not in b)
    assert f"…and {count - shown} more" in last["elements"][0]["text"]


def test_slack_message_with_changes_lists_only_the_changes() -> None:
    old, new = failing(1), failing(2)
    back = CaseResult("intents", "fixed", "passed", [Check("label = a", True, "label is 'a'")], [{}], [{}])
    changes = Changes(newly_failing=[new], newly_passing=[back], still_failing=1)
    message = slack_message(report_of([old, new, back]), changes)
    check_block_kit(message)
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "fields" not in b]
    assert len(texts) == 2
    assert texts[0].startswith("*intents › case 2") and texts[1] == "*intents › fixed*\npasses again"
    fields = message["blocks"][1]["fields"]
    assert {"type": "mrkdwn", "text": "*Newly failing*\n1"} in fields


def test_webhook_payload() -> None:
    changes = Changes(newly_failing=[failing(1)])
    payload = webhook_payload(report_of([failing(1)]), changes)
    assert payload["event"] == "shipway.validation" and payload["ok"] is False
    assert payload["changes"] == {"newly_failing": ["intents::case 1 n"], "newly_passing": [], "still_failing": 0}
    assert payload["failing"][0]["diagnosis"]["stage"] == "truncate"
    assert payload["targets"][0]["ids"]["model_version"] == "m-1"


def test_post_retries_server_errors_with_backoff(recorder: Recorder) -> None:
    recorder.script = ["500", "429", "ok"]
    waits: list[float] = []
    delivery = post_json(recorder.url + "/hook", {"a": 1}, retries=3, backoff_s=0.01, sleep=waits.append)
    assert delivery.ok and delivery.attempts == 3 and delivery.status == 200
    assert waits == [0.01, 0.02]  # doubling each time
    assert [p["body"] for p in recorder.posts] == [{"a": 1}] * 3


def test_post_gives_up_and_reports(recorder: Recorder) -> None:
    recorder.script = ["500"] * 10
    delivery = post_json(recorder.url + "/services/T000/B000/secret", {"a": 1}, retries=2, sleep=lambda s: None)
    assert not delivery.ok and delivery.attempts == 3 and delivery.status == 500
    assert delivery.error is not None and delivery.error.startswith("HTTP 500")
    assert "secret" not in delivery.url and delivery.url == f"{recorder.url}/…"
    assert len(recorder.posts) == 3


def test_post_does_not_retry_a_client_error(recorder: Recorder) -> None:
    recorder.script = ["404"]
    delivery = post_json(recorder.url, {"a": 1}, retries=3, sleep=lambda s: None)
    assert not delivery.ok and delivery.attempts == 1 and delivery.status == 404


def test_post_retries_a_timeout(recorder: Recorder) -> None:
    recorder.script = ["slow", "ok"]
    recorder.slow_s = 1.0
    delivery = post_json(recorder.url, {"a": 1}, retries=2, timeout_s=0.2, sleep=lambda s: None)
    assert delivery.ok and delivery.attempts == 2
    recorder.script = ["slow", "slow"]
    delivery = post_json(recorder.url, {"a": 1}, retries=1, timeout_s=0.2, sleep=lambda s: None)
    assert not delivery.ok and delivery.attempts == 2 and delivery.status is None
    assert delivery.error is not None and "Timeout" in delivery.error


def test_post_to_nowhere_is_reported_not_raised() -> None:
    delivery = post_json(f"http://127.0.0.1:{free_port()}/hook", {"a": 1}, retries=1, sleep=lambda s: None)
    assert not delivery.ok and delivery.attempts == 2 and "ConnectError" in (delivery.error or "")
    bad = post_json("not a url", {"a": 1}, retries=3, sleep=lambda s: None)
    assert not bad.ok and bad.attempts == 1


def test_notify_posts_to_slack_and_the_webhook(recorder: Recorder) -> None:
    report = report_of([failing(1)])
    deliveries = notify(report, slack=recorder.url + "/slack", webhook=recorder.url + "/hook", sleep=lambda s: None)
    assert [d.ok for d in deliveries] == [True, True]
    slack, hook = recorder.posts
    assert slack["path"] == "/slack" and slack["body"] == json.loads(json.dumps(slack_message(report)))
    check_block_kit(slack["body"])
    assert hook["path"] == "/hook" and hook["body"]["failing"][0]["case"] == "case 1 n"
    assert notify(report) == []
