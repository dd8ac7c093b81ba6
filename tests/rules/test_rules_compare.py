"""Shadow rules against the live rules, and backtests scored on the outcomes that came back:
the router service in-process, its real SQLite store, feedback through /feedback, and the
`shipway rules compare` and `backtest` commands reading them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from conftest import SERVICES, InProcess, wait_for

from shipway.store import open_store

ROUTER = SERVICES / "router"
TOKEN = "test-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}

SHADOW = """version: routing-s
default:
  queue: general
  answer: {intent: unknown, probability: 0.0}
rules:
  - name: urgent-cards
    when: output.intent in ["card_arrival", "lost_or_stolen_card", "compromised_card"]
    then: {queue: urgent}
  - name: unsure
    when: output.probability < 0.7
    then: {review: true, reason: unsure}
"""

# request id: (text, true label); the shadow rules route r-b to urgent and review r-c, whose
# prediction (age_limit) is wrong: the live rules let it through, the shadow rules catch it.
TRAFFIC = {
    "r-a": ("card_arrival 0.9", "card_arrival"),
    "r-b": ("compromised_card 0.9", "compromised_card"),
    "r-c": ("age_limit 0.6", "top_up"),
    "r-d": ("age_limit 0.3", "age_limit"),
}


def _cli(project: Path, store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPWAY_STORE_URL": store_url, "SHIPWAY_ACTOR": "ci-bot"}
    return subprocess.run(
        [sys.executable, "-m", "shipway", "rules", *args, "--target", str(project)],
        capture_output=True,
        text=True,
        env=env,
    )


def _logged(store_url: str) -> int:
    with open_store(store_url) as store:
        return len(store.read_predictions())


@pytest.fixture
def shadowed(tmp_path: Path, serve_in_process: Callable[..., InProcess]) -> InProcess:
    """The router with SHADOW applied in shadow mode, TRAFFIC served and its feedback sent."""
    server = serve_in_process(ROUTER, env={"SHIPWAY_ADMIN_TOKEN": TOKEN})
    applied = server.post("/admin/rules", json={"source": SHADOW, "mode": "shadow"}, headers=AUTH)
    assert applied.status_code == 200, applied.text
    for request_id, (text, _) in TRAFFIC.items():
        answer = server.post("/predict", json={"text": text}, headers={"x-request-id": request_id})
        assert answer.status_code == 200, answer.text
    wait_for(lambda: _logged(server.store_url) == len(TRAFFIC), 10, "the log to hold the predictions")
    feedback = [{"request_id": rid, "label": label} for rid, (_, label) in TRAFFIC.items()]
    feedback.append({"request_id": "r-b", "name": "queue", "value": "urgent"})  # the right queue
    sent = server.post("/feedback", json=feedback, headers=AUTH)
    assert sent.status_code == 200, sent.text
    return server


def test_compare_pairs_the_logged_decisions_and_scores_both(shadowed: InProcess, tmp_path: Path) -> None:
    out = _cli(tmp_path / "router", shadowed.store_url, "compare", "--since", "1h", "--json")
    assert out.returncode == 0, out.stderr
    found = orjson.loads(out.stdout)
    assert (found["live_version"], found["shadow_version"]) == ("routing-1", "routing-s")
    assert found["compared"] == 4 and found["agreed"] == 2 and found["canary"] == 0
    changes = {(d["live"], d["candidate"]): d for d in found["disagreements"]}
    assert set(changes) == {("general", "urgent"), ("general", "general")}
    assert changes[("general", "urgent")]["examples"][0]["request_id"] == "r-b"
    assert changes[("general", "urgent")]["examples"][0]["shadow_fired"] == ["urgent-cards"]
    assert found["review"] == {"added": 1}
    live, shadow = found["outcomes"]["live"], found["outcomes"]["shadow"]
    assert (live["labelled"], live["correct"], live["through"], live["caught"]) == (4, 3, 1, 0)
    assert (shadow["labelled"], shadow["correct"], shadow["through"], shadow["caught"]) == (4, 3, 0, 1)
    assert (live["reviewed"], shadow["reviewed"]) == (1, 2)
    assert (live["queue"]["accuracy"], shadow["queue"]["accuracy"]) == (0.0, 1.0)

    text = _cli(tmp_path / "router", shadowed.store_url, "compare", "--since", "1h").stdout
    assert "shadow rules routing-s against live rules routing-1" in text
    assert "4 logged predictions decided by both; 2 agree (50.0%)" in text
    assert "general -> urgent: 1" in text
    assert "wrong answers returned unreviewed" in text and "right queue (of 1)" in text


def test_compare_says_how_to_start_when_no_shadow_rules_ran(tmp_path: Path, serve_in_process: Callable) -> None:
    server = serve_in_process(ROUTER)
    assert server.post("/predict", json={"text": "card_arrival 0.9"}).status_code == 200
    wait_for(lambda: _logged(server.store_url) == 1, 10, "the log to hold the prediction")
    out = _cli(tmp_path / "router", server.store_url, "compare", "--since", "1h")
    assert out.returncode == 0, out.stderr
    assert "no prediction of the window was decided by shadow rules" in out.stdout
    assert "shipway rules apply FILE --mode shadow" in out.stdout


def test_a_backtest_scores_both_rule_sets_on_the_feedback(shadowed: InProcess, tmp_path: Path) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(SHADOW)
    out = _cli(tmp_path / "router", shadowed.store_url, "backtest", str(proposed), "--since", "1h", "--json")
    assert out.returncode == 0, out.stderr
    report = orjson.loads(out.stdout)
    assert report["changed"] == 2
    outcomes = report["outcomes"]
    assert outcomes["changed_scored"] == 2
    assert (outcomes["current"]["through"], outcomes["proposed"]["through"]) == (1, 0)
    assert (outcomes["current"]["caught"], outcomes["proposed"]["caught"]) == (0, 1)
    assert outcomes["current"]["accuracy"] == outcomes["proposed"]["accuracy"] == 0.75
    assert report["reads"][:2] == ["output.intent", "output.probability"]
    text = _cli(tmp_path / "router", shadowed.store_url, "backtest", str(proposed), "--since", "1h").stdout
    assert "no feedback labels are recorded yet" not in text
    assert "outcomes: 4 predictions with their true label, 2 of the 2 changed ones" in text
    # The example shows the fields the rules read first: the output's intent, then its probability.
    assert '{"intent":"compromised_card","probability":0.9}' in text


def test_a_backtest_without_feedback_says_what_would_score_it(tmp_path: Path, serve_in_process: Callable) -> None:
    server = serve_in_process(ROUTER)
    assert server.post("/predict", json={"text": "compromised_card 0.9"}).status_code == 200
    wait_for(lambda: _logged(server.store_url) == 1, 10, "the log to hold the prediction")
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(SHADOW)
    out = _cli(tmp_path / "router", server.store_url, "backtest", str(proposed), "--since", "1h")
    assert out.returncode == 0, out.stderr
    assert "no feedback came back for these predictions" in out.stdout and "docs/feedback.md" in out.stdout


def test_the_admin_history_names_who_applied_without_an_actor(shadowed: InProcess, tmp_path: Path) -> None:
    history = shadowed.get("/admin/rules", headers=AUTH).json()["history"]
    assert history[0]["version"] == "routing-s" and history[0]["actor"].startswith("admin token from ")
    routes = shadowed.get("/").json()["routes"]
    assert {"/feedback", "/admin/rules", "/predict", "/dashboard"} <= set(routes)


def test_cli_apply_names_the_actor_and_what_the_gate_ran(tmp_path: Path) -> None:
    import shutil

    project = Path(shutil.copytree(ROUTER, tmp_path / "router", ignore=shutil.ignore_patterns("__pycache__")))
    (project / "validation").mkdir()
    (project / "validation" / "routing.yaml").write_text(
        "name: routing\ncases:\n  - name: cards are urgent\n    input: {text: card_arrival 0.9}\n"
        "    expect: {queue: urgent}\n  - name: the rest is general\n    input: {text: age_limit 0.9}\n"
        "    expect: {queue: general}\n"
    )
    rules = tmp_path / "shadow.yaml"
    rules.write_text(SHADOW)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    out = _cli(project, store_url, "apply", str(rules))
    assert out.returncode == 0, out.stderr
    assert "validation gate: 2 cases of 1 suite passed (routing 2)" in out.stdout
    history = _cli(project, store_url, "history").stdout
    assert "routing-s" in history and "ci-bot" in history
