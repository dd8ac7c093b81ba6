"""Rollouts over a real store on both backends: a plan that advances shadow -> canary -> promote,
a breached guard rolled back with its reason recorded and a webhook told (a real local HTTP
receiver), abort and start again."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from store_fixtures import make_record

from shipway.deploy.plan import Guards, Plan, parse_steps
from shipway.deploy.rollout import Rollout, step_of
from shipway.errors import RolloutError
from shipway.registry import candidate_history, current_candidate
from shipway.store import Store, open_store
from shipway.store.registry import ModelVersion
from shipway.store.version_comparison import SHADOW_SUFFIX

pytest_plugins = ["store_fixtures"]

SERVICE = "svc"
LIVE, CAND = "live-aaaa", "cand-bbbb"
STEPS = [
    {"mode": "shadow", "duration": "1m"},
    {"mode": "canary", "share": 0.25, "duration": "2m"},
    {"mode": "promote"},
]


class Clock:
    """The controller's time: the real clock plus however far a test moved it on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


class Receiver:
    """A real HTTP server on a free port that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with outer.arrived:
                    outer.bodies.append(json.loads(body))
                    outer.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rollouts"

    def wait_for(self, action: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                found = [b for b in self.bodies if b.get("action") == action]
                if found:
                    return found[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {action!r} message arrived; got {self.bodies}")
                self.arrived.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        for version in (LIVE, CAND):
            opened.register_model_version(ModelVersion(version, version[-4:] * 16))
        yield opened


def _plan(webhook: str = "", slack: str = "", **guards: Any) -> Plan:
    values: dict[str, Any] = {"min_requests": 10, "min_labelled": 5, "window_s": 3600.0, **guards}
    return Plan(parse_steps(STEPS), Guards(**values), check_every_s=1.0, webhook=webhook, slack=slack)


def _traffic(store: Store, start: int, n: int, *, shadow: bool, cand_status: int = 200, disagree: bool = False) -> None:
    """n requests from now, logged as serving logs them: the live answer, and the candidate's
    (in shadow for every request, under the request id with SHADOW_SUFFIX; in canary every
    fourth request, answered by the candidate alone). A failed answer is only counted."""
    now = time.time()
    records, failures = [], []
    for i in range(start, start + n):
        rid = f"q{i}"
        label = f"class-{i % 3}"
        if shadow or i % 4:
            live = orjson.dumps({"intent": label})
            records.append(
                make_record(i, request_id=rid, ts=now + (i - start) * 0.001, model_version=LIVE, outputs=live)
            )
        if shadow or not i % 4:
            said = orjson.dumps({"intent": f"other-{i % 3}" if disagree else label})
            record = make_record(
                i,
                request_id=rid + SHADOW_SUFFIX if shadow else rid,
                ts=now + (i - start) * 0.001 + 0.0005,
                model_version=CAND,
                status=cand_status,
                outputs=said,
            )
            (failures if cand_status >= 400 else records).append(record)
    store.write_predictions(records)
    if failures:
        store.write_rollups(failures)


def test_plan_advances_shadow_then_canary_then_promotes(store: Store, receiver: Receiver) -> None:
    clock = Clock()
    rollout = Rollout(store, SERVICE, _plan(receiver.url), actor="tester", clock=clock)
    started = rollout.start(CAND)
    assert (started.state.mode, started.state.share, step_of(started.state)) == ("shadow", 1.0, 0)
    assert rollout.tick() is None  # no traffic yet: nothing to judge, the step cannot end

    _traffic(store, 0, 20, shadow=True)
    assert rollout.tick() is None  # enough requests, but the step has not lasted its minute
    clock.ahead = 61.0
    advanced = rollout.tick()
    assert advanced is not None and advanced.action == "advanced"
    assert (advanced.state.mode, advanced.state.share, step_of(advanced.state)) == ("canary", 0.25, 1)
    assert advanced.comparison is not None and advanced.comparison.agreement == 1.0
    assert receiver.wait_for("advanced")["mode"] == "canary"

    clock.ahead = 0.0  # the canary step began now, in the store's time
    _traffic(store, 100, 60, shadow=False)
    assert rollout.tick() is None  # judged fine, but two minutes have not passed
    clock.ahead = 121.0
    promoted = rollout.tick()
    assert promoted is not None and promoted.action == "promoted"
    assert current_candidate(store, SERVICE).mode == "promoted"  # type: ignore[union-attr]
    assert store.model_history(SERVICE, 1)[0].version == CAND  # every worker and a restart serve it
    assert receiver.wait_for("promoted")["version"] == CAND
    modes = [s.mode for s in reversed(candidate_history(store, SERVICE))]
    assert modes == ["shadow", "canary", "promoted"]
    assert rollout.tick() is None  # nothing runs any more


@pytest.mark.parametrize("breach", ["errors", "disagreement"])
def test_breached_guard_rolls_back_records_why_and_tells_the_webhook(
    store: Store, receiver: Receiver, breach: str
) -> None:
    slack = receiver.url.replace("/rollouts", "/slack")
    rollout = Rollout(store, SERVICE, _plan(receiver.url, slack, min_agreement=0.9), actor="tester")
    rollout.start(CAND)
    if breach == "errors":
        _traffic(store, 0, 20, shadow=True, cand_status=500)
    else:
        _traffic(store, 0, 20, shadow=True, disagree=True)
    decision = rollout.tick()  # at once: a breach does not wait for the step's duration
    assert decision is not None and decision.action == "rolled_back"
    state = current_candidate(store, SERVICE)
    assert state is not None and (state.mode, state.share) == ("rolled_back", 0.0)
    guard = "max_error_rate" if breach == "errors" else "min_agreement"
    assert decision.verdict is not None and [b.guard for b in decision.verdict.breaches] == [guard]
    assert "guard breached at rollout step 1/3" in state.reason
    assert ("error rate 100.0%" if breach == "errors" else "agreement with the live version 0.0%") in state.reason
    message = receiver.wait_for("rolled_back")
    assert message["event"] == "shipway.rollout" and message["reason"] == state.reason
    assert message["breaches"][0]["guard"] == guard
    assert [d.ok for d in decision.deliveries] == [True, True]
    blocks = next(b for b in receiver.bodies if "blocks" in b and b["text"].startswith("ROLLED BACK"))
    assert blocks["text"] == f"ROLLED BACK: {SERVICE} {CAND}"
    assert any(state.reason[:100] in json.dumps(block) for block in blocks["blocks"])


def test_too_few_requests_neither_breach_nor_end_the_step(store: Store) -> None:
    clock = Clock()
    rollout = Rollout(store, SERVICE, _plan(), actor="tester", clock=clock)
    rollout.start(CAND)
    _traffic(store, 0, 5, shadow=True, cand_status=500)  # all failing, but 5 of the 10 needed
    clock.ahead = 1800.0  # far past the step's minute, within the guards' hour
    assert rollout.tick() is None
    status = rollout.status()
    assert status.running and status.step == 0
    assert status.verdict is not None and status.verdict.waiting
    assert "5 of the 10" in status.verdict.waiting[0]


def test_abort_then_start_again(store: Store) -> None:
    rollout = Rollout(store, SERVICE, _plan(), actor="tester")
    with pytest.raises(RolloutError, match="no rollout is running"):
        rollout.abort()
    rollout.start(CAND)
    with pytest.raises(RolloutError, match=r"already rolling out.*abort"):
        rollout.start(CAND)
    aborted = rollout.abort("wrong tokenizer")
    assert aborted.state.mode == "rolled_back" and aborted.state.reason == "aborted by tester: wrong tokenizer"
    assert rollout.tick() is None  # an aborted rollout is left alone
    again = rollout.start(CAND)
    assert again.state.mode == "shadow" and step_of(again.state) == 0
    assert [s.mode for s in candidate_history(store, SERVICE)] == ["shadow", "rolled_back", "shadow"]


def test_two_controllers_make_one_change(store: Store, receiver: Receiver) -> None:
    plan = _plan(receiver.url)
    first = Rollout(store, SERVICE, plan, actor="worker-1")
    second = Rollout(store, SERVICE, plan, actor="worker-2")
    first.start(CAND)
    _traffic(store, 0, 20, shadow=True, cand_status=500)
    decisions = []
    threads = [threading.Thread(target=lambda r=r: decisions.append(r.tick())) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(d is None for d in decisions) == [False, True]  # one wins the compare-and-set
    assert [s.mode for s in candidate_history(store, SERVICE)] == ["rolled_back", "shadow"]
    receiver.wait_for("rolled_back")
    assert sum(b["action"] == "rolled_back" for b in receiver.bodies) == 1


def test_parity_gate_runs_before_any_traffic(store: Store) -> None:
    rollout = Rollout(store, SERVICE, _plan(), actor="tester")
    seen: list[str] = []

    def refuse(version: str) -> None:
        seen.append(version)
        raise RolloutError(f"{version} answers differently from its training run")

    with pytest.raises(RolloutError, match="answers differently"):
        rollout.start("cand", parity=refuse)  # a prefix resolves to the registered version
    assert seen == [CAND]
    assert current_candidate(store, SERVICE) is None


def test_a_failing_validation_report_written_during_the_step_rolls_back(store: Store, tmp_path: Path) -> None:
    report = tmp_path / "validation.json"
    rollout = Rollout(store, SERVICE, _plan(suites=True), actor="tester", suite_report=report)
    started = rollout.start(CAND)
    _traffic(store, 0, 20, shadow=True)
    # A report from before the step does not count against it.
    report.write_text(json.dumps({"ok": False, "counts": {"failed": 4}, "started_at": started.state.changed_at - 60}))
    assert rollout.tick() is None
    report.write_text(
        json.dumps({"ok": False, "counts": {"failed": 2, "error": 1}, "started_at": started.state.changed_at + 1})
    )
    # Another controller (a restart): its first check reads the records and the suites.
    decision = Rollout(store, SERVICE, _plan(suites=True), actor="tester", suite_report=report).tick()
    assert decision is not None and decision.action == "rolled_back"
    assert "the validation suites failed during the step: 3 cases" in decision.state.reason


def test_a_rollout_started_again_is_not_judged_on_the_last_ones_answers(store: Store) -> None:
    clock = Clock()
    rollout = Rollout(store, SERVICE, _plan(), actor="tester", clock=clock)
    rollout.start(CAND)
    _traffic(store, 0, 20, shadow=True, cand_status=500)
    assert rollout.tick() is not None  # rolled back
    again = rollout.start(CAND)
    # The rollups count per minute; the failures above may share this minute, and must not count.
    assert rollout.tick() is None
    state = current_candidate(store, SERVICE)
    assert state is not None and state.mode == "shadow" and state.generation == again.state.generation
