"""Alerts against a real store (predictions written by the real prediction log, feedback joined by
the store) and a real HTTP receiver on localhost; deduplication across evaluators; every bad
field of an alerts file; Slack's Block Kit limits (docs.slack.dev/reference/block-kit)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from store_fixtures import wait_for

from shipway.cli.main import main as cli
from shipway.errors import AlertError
from shipway.monitoring.alerts._messages import slack_alert, webhook_alert
from shipway.monitoring.alerts.alert_file import load_alerts, parse_alerts
from shipway.monitoring.alerts.alerter import Alerter, Evaluation
from shipway.store import PredictionLog, PredictionRecord, Store, open_store
from shipway.store.outcomes import describe_fields
from shipway.store.records import FeedbackRecord

pytest_plugins = ["store_fixtures"]

NOW = 1_700_000_040.0  # the evaluations' "now": fixed, so windows hold exactly what a test wrote
SERVICE = "intents"


class Receiver:
    """Webhook endpoints on localhost that record every POST (Slack's and the generic one)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with receiver.lock:
                    receiver.posts.append({"path": self.path, "body": body})
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p["body"] for p in self.posts if p["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def log_predictions(url: str, tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    """Write predictions the way serving does: through the prediction log."""
    log = PredictionLog(url, spool_dir=tmp_path / "spool", flush_interval_s=60)
    log.start()
    for row in rows:
        output = {"label": row.get("label", "card_arrival"), "score": row.get("score", 0.9)}
        log.append(
            PredictionRecord(
                request_id=row["id"],
                ts=row["ts"],
                service=SERVICE,
                model_version=row.get("model", "m-1"),
                latency_ms=row.get("latency_ms", 12.0),
                inputs=orjson.dumps({"text": "where is my card", "amount": row.get("amount", 1.0)}),
                outputs=orjson.dumps(output),
                rules_version=row.get("rules", "r-1"),
                status=row.get("status", 200),
            )
        )
    assert log.flush()
    log.close()


def requests(first: int, n: int, *, errors: int = 0, ts: float = NOW - 600, **extra: Any) -> list[dict[str, Any]]:
    """`n` predictions with ids first..first+n-1, the first `errors` of them failed (status 500)."""
    return [
        {"id": f"req-{i}", "ts": ts + (i - first) * 0.01, "status": 500 if i - first < errors else 200, **extra}
        for i in range(first, first + n)
    ]


def alerts_file(receiver: Receiver, rules: str) -> str:
    return f"""
channels:
  team: {{slack: "{receiver.url}/slack"}}
  hook: {{webhook: "{receiver.url}/hook"}}
alerts:
{rules}"""


ERROR_RATE = """
  - name: error rate
    metric: error_rate
    above: 0.1
    window: 1h
    min_requests: 10
    severity: critical
"""


def alerter(store: Store, receiver: Receiver, rules: str, **kwargs: Any) -> Alerter:
    kwargs.setdefault("sleep", lambda s: None)
    kwargs.setdefault("retries", 0)
    return Alerter(parse_alerts(alerts_file(receiver, rules)), SERVICE, store, **kwargs)


# -- deduplication ----------------------------------------------------------------------


def test_an_empty_window_does_not_fire(store: Store, receiver: Receiver) -> None:
    rules = ERROR_RATE + "  - {name: latency, metric: latency_ms.p99, above: 100, window: 15m}\n"
    evaluations = alerter(store, receiver, rules).evaluate(NOW)
    assert [e.state for e in evaluations] == ["no_data", "no_data"]
    assert "0 requests in the window, fewer than min_requests 10" in evaluations[0].reason
    assert "fewer than min_requests 1" in evaluations[1].reason  # the default: an empty window is no data
    assert receiver.posts == [] and store.alert_events(SERVICE) == []


def test_error_rate_fires_once_and_recovers_once(
    store: Store, store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    log_predictions(store_url, tmp_path, requests(0, 5))
    a = alerter(store, receiver, ERROR_RATE)
    below_minimum = a.evaluate(NOW)[0]
    assert below_minimum.state == "no_data" and "5 requests" in below_minimum.reason

    log_predictions(store_url, tmp_path, requests(5, 15, errors=5))  # 5 failed of 20: 25%
    first, *again = [a.evaluate(NOW)[0] for _ in range(3)]
    assert first.state == "firing" and first.changed and first.value == pytest.approx(0.25)
    assert [(e.state, e.changed) for e in again] == [("firing", False), ("firing", False)]
    assert [d.ok for d in first.deliveries] == [True, True]
    (slack,) = receiver.at("/slack")
    (hook,) = receiver.at("/hook")
    assert slack["blocks"][0]["text"]["text"].startswith(":rotating_light: CRITICAL · intents: error rate")
    assert hook["event"] == "shipway.alert" and hook["status"] == "firing"
    assert hook["value"] == pytest.approx(0.25) and hook["requests"] == 20 and hook["threshold"] == 0.1
    assert hook["versions"] == {"model_version": ["m-1"], "rules_version": ["r-1"]}

    log_predictions(store_url, tmp_path, requests(20, 80))  # 5 failed of 100: 5%
    recovered, *after = [a.evaluate(NOW)[0] for _ in range(3)]
    assert recovered.state == "ok" and recovered.changed and recovered.status == "resolved"
    assert recovered.value == pytest.approx(0.05) and recovered.firing_since == NOW
    assert [(e.state, e.changed) for e in after] == [("ok", False), ("ok", False)]
    assert [b["status"] for b in receiver.at("/hook")] == ["firing", "resolved"]
    assert len(receiver.at("/slack")) == 2
    assert receiver.at("/slack")[1]["blocks"][0]["text"]["text"].startswith(":white_check_mark: RESOLVED")
    assert [(e.key, e.firing) for e in reversed(store.alert_events(SERVICE))] == [
        ("error rate", True),
        ("error rate", False),
    ]


def test_dropped_log_records_fire_even_with_nothing_logged(store: Store, receiver: Receiver) -> None:
    rules = "  - {name: records dropped, metric: log_dropped, above: 0, window: 15m}\n"
    a = alerter(store, receiver, rules)
    assert a.evaluate(NOW)[0].state == "ok"
    store.write_drops({(int(NOW - 300) // 60, SERVICE): 7, (int(NOW - 3600) // 60, SERVICE): 1})
    fired = a.evaluate(NOW)[0]
    assert fired.state == "firing" and fired.value == 7 and fired.changed
    assert [b["metric"] for b in receiver.at("/hook")] == ["log_dropped"]


def test_accuracy_needs_feedback_and_missing_feedback_is_not_a_recovery(
    store: Store, store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    rules = """
  - name: accuracy
    metric: accuracy
    below: 0.8
    window: 1h
    min_labelled: 10
    channels: [hook]
"""
    log_predictions(store_url, tmp_path, requests(0, 20, label="card_arrival"))
    a = alerter(store, receiver, rules)
    (e,) = a.evaluate(NOW)
    assert e.state == "no_data" and e.value is None and "0 labelled predictions" in e.reason

    # 12 labels, 6 of them disagree with what was predicted: accuracy 0.5.
    labels = [
        FeedbackRecord(f"req-{i}", orjson.dumps("card_arrival" if i % 2 else "lost_card"), "label", NOW - 500)
        for i in range(12)
    ]
    outcome = store.write_feedback(labels, describe_fields())
    assert outcome.to_dict()["joined"] == 12
    (e,) = a.evaluate(NOW)
    assert e.state == "firing" and e.changed and e.value == pytest.approx(0.5) and e.labelled == 12

    # An hour later the window holds new predictions with no labels yet: no data, still firing.
    later = NOW + 3600
    log_predictions(store_url, tmp_path, requests(100, 20, ts=later - 600))
    (e,) = a.evaluate(later)
    assert e.state == "no_data" and not e.changed
    assert store.alert_states(SERVICE) == {"accuracy": True}
    assert [b["status"] for b in receiver.at("/hook")] == ["firing"]


def test_two_evaluators_racing_send_one_message(store_url: str, receiver: Receiver, tmp_path: Path) -> None:
    log_predictions(store_url, tmp_path, requests(0, 20, errors=10))
    rules = parse_alerts(alerts_file(receiver, ERROR_RATE))
    stores = [open_store(store_url) for _ in range(4)]  # one connection each, like separate workers
    evaluators = [Alerter(rules, SERVICE, s, retries=0) for s in stores]
    start = threading.Barrier(len(evaluators))
    results: list[Evaluation] = []

    def run(a: Alerter) -> None:
        start.wait()
        for _ in range(3):
            results.extend(a.evaluate(NOW))

    threads = [threading.Thread(target=run, args=(a,)) for a in evaluators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(results) == 12 and all(e.state == "firing" for e in results)
    assert sum(e.changed for e in results) == 1
    assert len(receiver.at("/hook")) == 1 and len(receiver.at("/slack")) == 1


def test_an_undeliverable_alert_is_reported_not_raised(store: Store, store_url: str, tmp_path: Path) -> None:
    log_predictions(store_url, tmp_path, requests(0, 20, errors=10))
    text = f"channels:\n  gone: {{webhook: 'http://127.0.0.1:9/hook'}}\nalerts:\n{ERROR_RATE}"
    a = Alerter(parse_alerts(text), SERVICE, store, retries=1, sleep=lambda s: None)
    (e,) = a.evaluate(NOW)
    assert e.changed and len(e.deliveries) == 1
    assert not e.deliveries[0].ok and e.deliveries[0].attempts == 2
    assert "FAILED" in e.line()


# -- metrics ---------------------------------------------------------------------------------


def test_latency_routing_and_outcome_metrics(store: Store, store_url: str, receiver: Receiver, tmp_path: Path) -> None:
    log_predictions(store_url, tmp_path, requests(0, 50, latency_ms=400.0))
    store.write_feedback(
        [FeedbackRecord(f"req-{i}", orjson.dumps(i < 10), "reopened", NOW - 500) for i in range(40)],
        describe_fields(),
    )
    rules = """
  - {name: slow, metric: latency_ms.p99, above: 250, window: 1h}
  - {name: reopened, metric: outcomes.reopened.mean, above: 0.3, window: 1h, min_labelled: 30}
  - {name: rare outcome, metric: outcomes.refunded.mean, above: 0.2, window: 1h}
  - {name: traffic, metric: requests, below: 100, window: 1h}
  - {name: review queue, metric: routing.review, above: 0.5, window: 1h}
"""
    slow, reopened, rare, traffic, routed = alerter(store, receiver, rules).evaluate(NOW)
    assert slow.state == "firing" and slow.value == pytest.approx(400, rel=0.05)  # log-spaced histogram
    assert reopened.state == "ok" and reopened.value == pytest.approx(10 / 40)
    assert rare.state == "no_data" and "'refunded' outcomes" in rare.reason
    assert traffic.state == "firing" and traffic.value == 50
    assert routed.state == "no_data" and "rules" in routed.reason  # no prediction here went through rules


def test_drift_metric_reads_the_reference_profile(
    store: Store, store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    from shipway.monitoring.drift.profile import Profile

    artifacts = tmp_path / "artifacts"
    reference = [{"text": "where is my card", "amount": float(i % 50)} for i in range(500)]
    Profile.build(reference, kinds={"text": "skip"}).save(artifacts)
    rows = [{**r, "amount": 200.0 + i % 7} for i, r in enumerate(requests(0, 200))]  # far from the reference
    log_predictions(store_url, tmp_path, rows)
    rules = """
  - {name: amount drift, metric: drift.amount.psi, above: 0.2, window: 1h}
  - {name: drifted, metric: drift.features_drifted, above: 0, window: 1h}
  - {name: no such feature, metric: drift.amont.psi, above: 0.2, window: 1h}
"""
    psi, drifted, missing = alerter(store, receiver, rules, profile=artifacts / "profile.json").evaluate(NOW)
    assert psi.state == "firing" and psi.value is not None and psi.value > 1
    assert drifted.state == "firing" and drifted.value == 1
    assert missing.state == "error" and "no feature 'amont'. Did you mean 'amount'?" in missing.reason
    (no_profile,) = alerter(store, receiver, rules.splitlines()[1] + "\n", profile=tmp_path / "x.json").evaluate(NOW)
    assert no_profile.state == "error" and "reference profile" in no_profile.reason


# -- the alerts file ---------------------------------------------------------------------------

RULE = "  - name: r\n    metric: error_rate\n    above: 0.1\n    window: 15m\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            RULE.replace("error_rate", "eror_rate"),
            "alerts.yaml:7: error: alert 'r': unknown metric 'eror_rate'. Did you mean 'error_rate'?",
        ),
        (
            RULE.replace("error_rate", "latency_ms.p95"),
            "alerts.yaml:7: error: alert 'r': unknown metric 'latency_ms.p95'.",
        ),
        (
            RULE.replace("error_rate", "drift.amount.psy"),
            "drift method 'psy', which does not exist. Did you mean 'psi'?",
        ),
        (
            RULE.replace("15m", "15 minutes"),
            "alerts.yaml:9: error: alert 'r': window '15 minutes' is not a duration; write it like 15m",
        ),
        (RULE.replace("15m", "900"), "alerts.yaml:9: error: alert 'r': window 900 needs a unit; write it like 15m"),
        (RULE.replace("15m", "0h"), "window '0h' must be longer than zero"),
        (
            RULE.replace("0.1", "high"),
            "alerts.yaml:8: error: alert 'r': the threshold `above:` must be a number, like 0.05, not 'high'",
        ),
        (RULE.replace("0.1", '"0.1"'), "the threshold `above:` must be a number, like 0.05, not '0.1'"),
        (RULE.replace("    above: 0.1\n", ""), "alerts.yaml:6: error: alert 'r' has neither above nor below"),
        (RULE + "    below: 0.5\n", "alert 'r' has both above and below"),
        (
            RULE + "    channels: [tem]\n",
            "alerts.yaml:10: error: alert 'r': unknown channel 'tem'. Did you mean 'team'? The channels defined under `channels:` are team",
        ),
        (
            RULE + "    severity: urgent\n",
            "alerts.yaml:10: error: alert 'r': severity must be one of info, warning, critical, not 'urgent'",
        ),
        (RULE + "    min_requests: -5\n", "min_requests must be a whole number of at least 0, like 100, not -5"),
        (RULE + "    min_labelled: lots\n", "min_labelled must be a whole number of at least 0, like 100, not 'lots'"),
        (RULE + "    threshold: 3\n", "alerts.yaml:10: error: alert 'r': unknown key 'threshold'. The keys are name,"),
        (RULE + RULE, "alerts.yaml:10: error: alert 'r': the name is used twice (first at line 6)"),
        (RULE.replace("name: r", "description: no name"), "alerts.yaml:6: error: alert 1 has no name"),
        (RULE.replace("    metric: error_rate\n", ""), "alerts.yaml:6: error: alert 'r' has no metric"),
        (RULE.replace("    window: 15m\n", ""), "alerts.yaml:6: error: alert 'r' has no window"),
        (RULE + "  - just text\n", "alerts.yaml:10: error: alert 2 must be a mapping"),
        (RULE + "   bad: [indent\n", "alerts.yaml:10:"),
    ],
)
def test_every_bad_field_has_a_clear_error(text: str, expected: str) -> None:
    header = "channels:\n  team: {slack: 'https://hooks.slack.com/services/T/B/x'}\n  hook: {webhook: 'https://example.com/h'}\nalerts:\n"
    with pytest.raises(AlertError) as caught:
        parse_alerts("# alerts\n" + header + text, "alerts.yaml", {})
    assert expected in str(caught.value), str(caught.value)
    assert caught.value.problems and all(p.startswith("alerts.yaml") for p in caught.value.problems)


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        (
            "  team: {webhook: '${HOOK}'}",
            "the webhook URL must start with https:// or http://, not what '${HOOK}' gives",
        ),
        (
            "  team: {slak: 'https://x.example'}",
            "alerts.yaml:2: error: channel 'team': unknown key 'slak'. Did you mean 'slack'?",
        ),
        (
            "  team: {webhook: 'ftp://x.example'}",
            "the webhook URL must start with https:// or http://, not 'ftp://x.example'",
        ),
        (
            "  team: {slack: 'https://a.example', webhook: 'https://b.example'}",
            "needs exactly one of slack: URL or webhook: URL",
        ),
        ("  - https://x.example", "alerts.yaml:2: error: `channels` must map channel names to"),
    ],
)
def test_bad_channels_have_clear_errors(channels: str, expected: str) -> None:
    text = f"channels:\n{channels}\nalerts:\n{RULE}"
    with pytest.raises(AlertError) as caught:
        parse_alerts(text, "alerts.yaml", {"HOOK": "hooks.example.com/secret"})
    assert expected in str(caught.value), str(caught.value)
    assert "hooks.example.com/secret" not in str(caught.value)  # a URL from the environment is a secret


def test_a_channel_whose_secret_is_not_set_warns_and_fails_each_message(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    text = f"channels:\n  team: {{slack: '${{SLACK_HOOK}}'}}\nalerts:\n{ERROR_RATE}"
    rules = parse_alerts(text, "alerts.yaml", {})
    assert rules.warnings == (
        "alerts.yaml:2: warning: channel 'team': the slack URL uses ${SLACK_HOOK}, which is not set in the environment; "
        "messages to 'team' fail until SLACK_HOOK is exported where alerts are evaluated",
    )
    log_predictions(store_url, tmp_path, requests(0, 20, errors=10))
    (e,) = Alerter(rules, SERVICE, store).evaluate(NOW)
    assert e.state == "firing" and e.changed
    (delivery,) = e.deliveries
    assert not delivery.ok and delivery.attempts == 0 and "SLACK_HOOK" in (delivery.error or "")


def test_an_optional_secret_turns_its_channel_off_without_a_warning(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    text = f"channels:\n  team: {{slack: '${{SLACK_HOOK:-}}'}}\nalerts:\n{ERROR_RATE}"
    rules = parse_alerts(text, "alerts.yaml", {})
    assert rules.warnings == ()
    assert rules.channels["team"].optional and rules.channels["team"].unset == "SLACK_HOOK"
    log_predictions(store_url, tmp_path, requests(0, 20, errors=10))
    (e,) = Alerter(rules, SERVICE, store).evaluate(NOW)
    assert e.state == "firing" and e.changed
    assert e.deliveries == []  # off: nothing sent, nothing failed
    # Where the secret is set, the same file sends to it.
    hooked = parse_alerts(text, "alerts.yaml", {"SLACK_HOOK": "https://hooks.example.com/x"})
    assert hooked.channels["team"].url == "https://hooks.example.com/x" and not hooked.channels["team"].optional


def test_every_problem_is_listed_in_line_order(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        f"alerts:\n{RULE.replace('15m', 'soon')}  - name: s\n    metric: nope\n    above: x\n    window: 1h\n"
    )
    with pytest.raises(AlertError) as caught:
        load_alerts(path)
    problems = caught.value.problems
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:5", f"{path}:7", f"{path}:8"]
    assert str(caught.value).startswith(f"{path} has 3 problems")
    with pytest.raises(AlertError, match=r"alerts file .*missing\.yaml does not exist; check monitoring\.alerts_file"):
        load_alerts(tmp_path / "missing.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"rules:\n  - name: caf\xe9\n")
    with pytest.raises(AlertError, match=r"cannot read alerts file .*latin1\.yaml: 'utf-8' codec can't decode"):
        load_alerts(tmp_path / "latin1.yaml")


def test_a_good_file_with_defaults() -> None:
    text = (
        "channels:\n  team: {slack: '${HOOK}/x'}\nalerts:\n"
        + RULE
        + "  - {name: acc, metric: accuracy, below: 0.9, window: 1d}\n"
    )
    rules = parse_alerts(text, "alerts.yaml", {"HOOK": "https://hooks.slack.com/services"})
    assert rules.channels["team"].url == "https://hooks.slack.com/services/x"
    rate, acc = rules.rules
    assert (rate.comparison, rate.threshold, rate.window_s, rate.severity) == ("above", 0.1, 900, "warning")
    assert (rate.min_requests, rate.min_labelled, rate.channels) == (1, 0, ("team",))
    assert (acc.min_requests, acc.min_labelled, acc.window_s) == (1, 1, 86400)
    assert acc.breached(0.89) and not acc.breached(0.9) and rate.breached(0.11) and not rate.breached(0.1)


# -- messages ------------------------------------------------------------------------------------


def check_block_kit(message: dict[str, Any]) -> None:
    blocks = message["blocks"]
    assert 1 <= len(blocks) <= 50 and message["text"] and len(message["text"]) <= 3000
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        else:
            assert block["type"] == "context" and 1 <= len(block["elements"]) <= 10
    assert sum(len(json.dumps(b)) for b in blocks) < 13_000  # below Slack's msg_blocks_too_long


def evaluation(rules_text: str, **fields: Any) -> Evaluation:
    (rule,) = parse_alerts("alerts:\n" + rules_text).rules
    e = Evaluation(rule, SERVICE, "firing", 0.25, NOW - 3600, NOW, requests=340, labelled=120, changed=True)
    for name, value in fields.items():
        setattr(e, name, value)
    return e


def test_the_slack_message_says_what_fired() -> None:
    e = evaluation(RULE + "    severity: critical\n    description: Failed requests <&> retries\n")
    e.versions = {"model_version": ["m-2", "m-1"], "rules_version": ["r-7"]}
    message = slack_alert(e, "https://shipway.example.com/dashboard?a=1&b=2")
    check_block_kit(message)
    header, body, notes = message["blocks"]
    assert header["text"]["text"] == ":rotating_light: CRITICAL · intents: r"
    assert "*error_rate* is *0.25*, above the threshold 0.1, over the last 15m." in body["text"]["text"]
    assert "Failed requests &lt;&amp;&gt; retries" in body["text"]["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in body["fields"]}
    assert fields["*Threshold*"] == "above 0.1" and fields["*Sample*"] == "340 requests, 120 labelled"
    assert fields["*Model version*"] == "m-2, m-1" and fields["*Rules version*"] == "r-7"
    assert fields["*Window*"] == "15m: 2023-11-14 21:14 UTC to 2023-11-14 22:14 UTC"
    assert "<https://shipway.example.com/dashboard?a=1&amp;b=2|Open the dashboard>" in json.dumps(notes)
    assert message["text"] == "CRITICAL: intents: r: error_rate = 0.25 (above 0.1) over 15m"
    assert "dashboard" not in json.dumps(slack_alert(e))


def test_the_recovery_message() -> None:
    e = evaluation(RULE, state="ok", value=0.02, firing_since=NOW - 5400)
    message = slack_alert(e)
    check_block_kit(message)
    assert message["blocks"][0]["text"]["text"] == ":white_check_mark: RESOLVED · intents: r"
    text = message["blocks"][1]["text"]["text"]
    assert "*error_rate* is back at *0.02*" in text and "for 1 h 30 min" in text
    payload = webhook_alert(e, "")
    assert payload["status"] == "resolved" and payload["firing_since"] == NOW - 5400
    assert payload["rule"]["metric"] == "error_rate" and payload["dashboard_url"] is None


@pytest.mark.parametrize("size", [200, 5000])
def test_the_slack_message_stays_within_block_kit_limits(size: int) -> None:
    long = "x" * size
    text = RULE.replace("name: r", f"name: {long}") + f"    description: {long}\n"
    e = evaluation(text, versions={"model_version": [long + str(i) for i in range(50)], "rules_version": [long]})
    message = slack_alert(e, "https://d.example/" + long)
    check_block_kit(message)
    assert "and 45 more" in json.dumps(message)


# -- the command -----------------------------------------------------------------------------------


def test_monitor_alerts_once(store_url: str, receiver: Receiver, tmp_path: Path) -> None:
    if not store_url.startswith("sqlite"):
        pytest.skip("the command reads the store named on its command line; once is enough")
    project = tmp_path / "project"
    project.mkdir()
    (project / "shipway.toml").write_text(f'name = "{SERVICE}"\n')
    (project / "alerts.yaml").write_text(alerts_file(receiver, ERROR_RATE.replace("1h", "1d")))
    runner = CliRunner()
    args = ["monitor", "alerts", str(project), "--once", "--store", store_url]
    quiet = runner.invoke(cli, args)
    assert quiet.exit_code == 0, quiet.output
    assert "NO_DATA  error rate" in quiet.output

    import time

    log_predictions(store_url, tmp_path, requests(0, 20, errors=10, ts=time.time() - 60))
    firing = runner.invoke(cli, [*args, "--json"])
    assert firing.exit_code == 1, firing.output
    result = json.loads(firing.output)
    assert result["state"] == "firing" and result["status"] == "firing" and result["value"] == 0.5
    assert len(receiver.at("/hook")) == 1
    again = runner.invoke(cli, args)
    assert again.exit_code == 1 and "FIRING   error rate" in again.output and "sent to" not in again.output
    assert len(receiver.at("/hook")) == 1

    (project / "alerts.yaml").write_text("alerts:\n  - name: x\n    metric: nope\n")
    bad = runner.invoke(cli, args)
    assert bad.exit_code == 2 and "alerts.yaml:3: error: alert 'x': unknown metric 'nope'" in bad.output
    missing = runner.invoke(cli, ["monitor", "alerts", str(tmp_path), "--once"])
    assert missing.exit_code == 2 and "no alert rules" in missing.output
    both = runner.invoke(cli, [*args, "--every", "1m"])
    assert both.exit_code == 2 and "--once" in both.output


# -- inside shipway serve ---------------------------------------------------------------------------


def test_serve_evaluates_alerts_in_every_worker_and_sends_one_message(
    serve: Any, receiver: Receiver, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "service.py").write_text((Path(__file__).parent / "services/identity/service.py").read_text())
    (project / "shipway.toml").write_text(
        'name = "echo"\n\n[monitoring]\nalerts_every_s = 1\n\n[log]\nflush_interval_s = 0.05\n'
    )
    rule = "  - {name: traffic, metric: requests, above: 2, window: 1h, channels: [hook]}\n"
    (project / "alerts.yaml").write_text(alerts_file(receiver, rule))
    server = serve(project, "--workers", "2")
    with server.client() as client:
        for i in range(3):
            assert client.post("/predict", json={"text": f"hello {i}"}).status_code == 200
    wait_for(lambda: receiver.at("/hook"), timeout=60, what="the alert from a worker")
    assert server.stop() == 0
    (message,) = receiver.at("/hook")  # two workers evaluated every second; one message
    assert message["alert"] == "traffic" and message["status"] == "firing" and message["value"] >= 3
    with open_store(server.store_url) as store:
        assert [(e.key, e.firing) for e in store.alert_events("echo")] == [("traffic", True)]
