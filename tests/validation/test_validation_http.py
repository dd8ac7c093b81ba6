"""Suites against a live `shipway serve`: the same results as in-process, the explain endpoint's
diagnosis, and scheduled runs that report only changes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SERVICES, InProcess, Server, free_port, in_process, start_server

from shipway.validation import (
    Changes,
    HttpTarget,
    InProcessTarget,
    Report,
    TargetError,
    load_pipeline,
    load_suite,
    notify,
    run_suites,
    watch,
)
from shipway.validation.suite import parse_suite
from tests.validation.test_validation_notify import Recorder
from tests.validation.test_validation_runner import LONG, SUITE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server, shared by the tests that reach it over a socket (the HTTP runner, the CLI)."""
    server = start_server(SERVICES / "validated", tmp_path_factory.mktemp("validated"), "--no-log")
    yield server
    server.kill()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    with in_process(SERVICES / "validated", tmp_path_factory.mktemp("validated"), "--no-log") as service:
        yield service


def test_http_runner_matches_in_process(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(SUITE)
    suite = load_suite(path)
    remote = run_suites([suite], HttpTarget(server.url))
    local = run_suites([suite], InProcessTarget(load_pipeline(SERVICES / "validated")))
    assert [(r.case, r.status) for r in remote.results] == [(r.case, r.status) for r in local.results]
    assert remote.counts == {"passed": 3, "failed": 7, "error": 2, "xfail": 1, "xpass": 1}
    assert remote.targets == [{"target": server.url, "ids": {**local.ids, "service": "validated"}}]
    for there, here in zip(remote.results, local.results, strict=True):
        if there.diagnosis is not None:
            assert here.diagnosis is not None
            assert (there.diagnosis.cause, there.diagnosis.stage) == (here.diagnosis.cause, here.diagnosis.stage)
    cut = next(r for r in remote.results if r.case == "cut by truncate")
    # The service ran the counterfactuals itself.
    assert cut.diagnosis is not None and cut.diagnosis.without is not None
    assert cut.diagnosis.summary == next(r for r in local.results if r.case == "cut by truncate").diagnosis.summary  # type: ignore[union-attr]
    invalid = next(r for r in remote.results if r.case == "not a valid input")
    assert invalid.checks[0].message.startswith("the service failed on the case input: HTTP 422")


def test_explain_endpoint_diagnoses_an_expectation(service: InProcess) -> None:
    plain = service.post("/explain", json={"text": LONG}).json()
    assert "expect" not in plain
    answer = service.post("/explain", json={"input": {"text": LONG}, "expect": "card_arrival"}).json()
    assert {"ids", "ms", "stages", "request_id", "output", "error", "expect"} <= set(answer)
    assert json.loads(answer["stages"][0]["input"]) == {"text": LONG}  # the trace starts from the raw body
    assert answer["output"]["label"] == "other"
    expect = answer["expect"]
    assert expect["passed"] is False
    assert expect["checks"][0]["message"].startswith("label is 'other'")
    assert expect["diagnosis"]["cause"] == "before-stage" and expect["diagnosis"]["stage"] == "truncate"
    spec = {"item_in_top_k": {"item": "doc-internal-card-faq", "k": 1, "list": "results"}}
    fields = {"key": "id"}
    hidden = service.post(
        "/explain", json={"input": {"text": "my card has not arrived"}, "expect": spec, "fields": fields}
    ).json()
    assert hidden["expect"]["diagnosis"]["stage"] == "hide_internal"
    ok = service.post("/explain", json={"input": {"text": "my pin"}, "expect": "pin_blocked"}).json()
    assert ok["expect"] == {
        "passed": True,
        "checks": [{"expectation": "label = pin_blocked", "passed": True, "message": "label is 'pin_blocked' (0.58)"}],
        "diagnosis": None,
    }


def test_explain_endpoint_rejects_a_bad_expectation(service: InProcess) -> None:
    response = service.post("/explain", json={"input": {"text": "x"}, "expect": {"lable": "a"}})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "payload_error"
    assert "unknown expectation 'lable'" in error["message"] and "Did you mean 'label'" in error["message"]
    invalid = service.post("/explain", json={"input": {"words": 1}, "expect": "a"})
    assert invalid.status_code == 422
    assert service.post("/explain", content=b'{"expect": not json').status_code == 400


CARD = parse_suite(
    {
        "name": "watched",
        "input_field": "text",
        "cases": [
            {"name": "card", "input": "my card has not arrived", "expect": {"label": "card_arrival"}},
            {"name": "pin", "input": "my pin is blocked", "expect": {"label": "pin_blocked"}},
            {"name": "refund", "input": "refund please", "expect": {"label": "pin_blocked"}},  # always fails
        ],
    }
)


def test_watch_reports_only_changes(serve: Callable[..., Server], tmp_path: Path) -> None:
    server = serve(SERVICES / "validated", "--no-log")
    broken = tmp_path / "validated" / "broken"  # the served copy reads it on every prediction
    target = HttpTarget(server.url)
    # Between runs: break the model after run 1, keep it broken for run 3, mend it before run 4.
    steps: dict[int, Callable[[], None]] = {1: broken.touch, 3: broken.unlink}
    seen: list[tuple[int, list[str], list[str], int]] = []
    runs = 0

    def between(_seconds: float) -> None:
        nonlocal runs
        runs += 1
        steps.get(runs, lambda: None)()

    def on_run(report: Report, changes: Changes, n: int) -> None:
        seen.append(
            (n, [r.case for r in changes.newly_failing], [r.case for r in changes.newly_passing], changes.still_failing)
        )

    state = tmp_path / "state.json"
    watch(lambda: run_suites([CARD], target), 60, on_run, max_runs=4, state_file=state, sleep=between)
    assert seen == [
        (0, ["refund"], [], 0),  # the first run reports what already fails, once
        (1, ["card"], [], 1),
        (2, [], [], 2),  # still failing: not reported again
        (3, [], ["card"], 1),
    ]
    # A restarted watcher reads the state file and does not page again for `refund`.
    again: list[Changes] = []
    watch(lambda: run_suites([CARD], target), 60, lambda r, c, n: again.append(c), max_runs=1, state_file=state)
    assert not again[0] and again[0].still_failing == 1
    assert json.loads(state.read_text())["statuses"]["watched::refund"] == "failed"


def test_watch_reports_an_outage_once(tmp_path: Path) -> None:
    target = HttpTarget(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(TargetError, match="cannot reach the service"):
        run_suites([CARD], target)
    seen: list[Changes] = []
    watch(lambda: run_suites([CARD], target), 0, lambda r, c, n: seen.append(c), max_runs=2, sleep=lambda s: None)
    assert [r.id for r in seen[0].newly_failing] == ["service::reachable"]
    assert not seen[1]


def test_scheduled_cli_run_posts_only_changes(server: Server, tmp_path: Path) -> None:
    suite = tmp_path / "watched.yaml"
    suite.write_text(
        "name: watched\ninput_field: text\ncases:\n"
        "  - {name: refund, input: refund please, expect: {label: pin_blocked}}\n"
        "  - {name: card, input: my card has not arrived, expect: {label: card_arrival}}\n"
    )
    recorder = Recorder()
    try:
        cmd = [sys.executable, "-m", "shipway", "validate", str(suite), "--url", server.url, "--every", "50ms"]
        cmd += ["--max-runs", "3", "--slack-webhook", recorder.url + "/slack", "--webhook", recorder.url + "/hook"]
        cmd += ["--json", str(tmp_path / "last.json"), "--state", str(tmp_path / "state.json")]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        recorder.close()
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "run 1: 1 passed, 1 failed" in out and "FAILED watched::refund" in out
    assert "run 2: 1 passed, 1 failed" in out and "no change, 1 still failing (reported before)" in out
    assert out.count("FAILED watched::refund") == 1
    # Posted once to each URL: on the first run, which was the only change.
    assert sorted(p["path"] for p in recorder.posts) == ["/hook", "/slack"]
    assert json.loads((tmp_path / "last.json").read_text())["counts"]["failed"] == 1


def test_cli_validate_against_a_live_service(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(SUITE)
    junit = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "shipway", "validate", str(path), "--url", server.url, "--junit", str(junit)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "3 passed, 7 failed, 2 errors, 1 expected failure, 1 unexpected pass" in done.stdout
    assert "cause: the input was changed by stage 'truncate'" in done.stdout
    assert b'failures="7"' in junit.read_bytes()


def test_notify_never_breaks_a_run(tmp_path: Path) -> None:
    report = Report()
    deliveries: list[Any] = notify(report, slack=f"http://127.0.0.1:{free_port()}/x", retries=0)
    assert not deliveries[0].ok
