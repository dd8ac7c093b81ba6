"""Rules in a running service: decisions in responses and the log, admin apply/rollback with a
token, every worker swapping, shadow and canary rule sets, file watch, and backtests."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from conftest import SERVICES, Server, logged_row, start_server

from shipway.core.service import load_project
from shipway.serving.app import App
from shipway.store import open_store

ROUTER = SERVICES / "router"
TOKEN = "test-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}

V2 = """version: routing-2
default: {queue: general}
rules:
  - name: everything-urgent
    then: {queue: urgent}
"""


def predict(server: Server, text: str, **extra: str) -> dict:
    response = httpx.post(server.url + "/predict", json={"text": text, **extra}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_version(server: Server, version: str, text: str = "age_limit 0.9", tries: int = 200) -> None:
    for _ in range(tries):
        if predict(server, text)["decision"]["rules_version"] == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"rules version {version} never served")


def logged(server: Server, request_id: str) -> dict:
    outputs, decision, shadow, rules_version = logged_row(
        server, request_id, "outputs, decision, shadow, rules_version"
    )
    return {
        "outputs": orjson.loads(outputs),
        "decision": decision and orjson.loads(decision),
        "shadow": shadow and orjson.loads(shadow),
        "rules_version": rules_version,
    }


@pytest.fixture
def router(tmp_path: Path) -> Server:
    server = start_server(ROUTER, tmp_path, "--workers", "2", env={"SHIPWAY_ADMIN_TOKEN": TOKEN})
    yield server
    assert server.stop() == 0


def test_decisions_are_returned_logged_and_counted(router: Server) -> None:
    answer = predict(router, "card_arrival 0.9")
    assert answer["intent"] == "card_arrival"
    decision = answer["decision"]
    assert (decision["queue"], decision["review"], decision["fired"]) == ("urgent", False, ["urgent-cards"])
    assert decision["rules_version"] == "routing-1"
    unsure = predict(router, "age_limit 0.3")["decision"]
    assert (unsure["queue"], unsure["review"], unsure["review_reason"]) == ("general", True, "low confidence")
    # fallback answers the rules' default answer; the log keeps what the model said
    response = httpx.post(router.url + "/predict", json={"text": "gibberish 0.99"}, headers={"x-request-id": "fb-1"})
    assert response.json()["intent"] == "unknown" and response.json()["decision"]["fallback"] is True
    record = logged(router, "fb-1")
    assert record["outputs"] == {"intent": "gibberish", "probability": 0.99}
    assert record["decision"]["fired"] == ["give-up"] and record["rules_version"] == "routing-1"
    trace = httpx.post(router.url + "/explain", json={"text": "card_arrival 0.9"}).json()
    assert [s["stage"] for s in trace["stages"]] == ["input", "predict", "rules", "output"]
    assert trace["stages"][2]["output"]["decision"]["queue"] == "urgent"
    metrics = httpx.get(router.url + "/metrics").text
    assert 'shipway_rule_hits_total{rule="urgent-cards",rules_version="routing-1",service="router"}' in metrics
    assert 'shipway_decisions_total{queue="urgent",service="router"}' in metrics


def test_admin_needs_the_token(router: Server) -> None:
    response = httpx.post(router.url + "/admin/rules", json={"source": V2})
    assert response.status_code == 401 and response.json()["error"]["type"] == "unauthorized"
    response = httpx.post(router.url + "/admin/rules", json={"source": V2}, headers={"authorization": "Bearer nope"})
    assert response.status_code == 401
    assert predict(router, "age_limit 0.9")["decision"]["rules_version"] == "routing-1"


def test_admin_is_off_without_a_token(tmp_path: Path) -> None:
    server = start_server(ROUTER, tmp_path)
    try:
        response = httpx.post(server.url + "/admin/rules", json={"source": V2}, headers=AUTH)
        assert response.status_code == 403 and "SHIPWAY_ADMIN_TOKEN" in response.json()["error"]["message"]
    finally:
        server.stop()


def test_a_bad_rules_file_never_replaces_good_rules(router: Server) -> None:
    bad = "rules:\n  - when: output.intnet == 'x'\n    then: {queue: a}\n"
    response = httpx.post(router.url + "/admin/rules", json={"source": bad}, headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "rules_error" and "did you mean output.intent" in error["message"]
    assert error["details"][0]["line"] == 2
    for _ in range(10):  # every worker still serves the good rules
        assert predict(router, "card_arrival 0.9")["decision"]["rules_version"] == "routing-1"


def test_apply_swaps_every_worker_and_rollback_restores(router: Server) -> None:
    response = httpx.post(router.url + "/admin/rules", json={"source": V2, "actor": "ana"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["applied"]["version"] == "routing-2"
    wait_for_version(router, "routing-2")
    time.sleep(0.5)  # two poll intervals: the other worker has swapped too
    seen = {predict(router, "age_limit 0.9")["decision"]["rules_version"] for _ in range(30)}
    assert seen == {"routing-2"}
    assert len({predict(router, "x 0.9")["decision"]["queue"] for _ in range(5)}) == 1
    history = httpx.get(router.url + "/admin/rules", headers=AUTH).json()
    assert [e["version"] for e in history["history"]][:2] == ["routing-2", "routing-1"]
    assert history["history"][0]["actor"] == "ana"
    response = httpx.post(router.url + "/admin/rules/rollback", json={}, headers=AUTH)
    assert response.json()["applied"] == {**response.json()["applied"], "version": "routing-1", "action": "rollback"}
    wait_for_version(router, "routing-1")
    response = httpx.post(router.url + "/admin/rules/rollback", json={"version": "nope"}, headers=AUTH)
    assert response.status_code == 404 and "known: routing-1, routing-2" in response.json()["error"]["message"]


def test_shadow_rules_are_logged_beside_the_live_ones(router: Server) -> None:
    response = httpx.post(router.url + "/admin/rules", json={"source": V2, "mode": "shadow"}, headers=AUTH)
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1  # a request id per attempt: each is logged once
        request_id = f"sh-{attempt}"
        response = httpx.post(
            router.url + "/predict", json={"text": "age_limit 0.9"}, headers={"x-request-id": request_id}
        )
        record = logged(router, request_id)
        if record["shadow"] is not None:
            break
        time.sleep(0.1)
    assert response.json()["decision"]["queue"] == "general"  # the live rules answer
    assert record["decision"]["rules_version"] == "routing-1"
    assert record["shadow"]["rules_version"] == "routing-2" and record["shadow"]["queue"] == "urgent"


def test_canary_share_is_stable_per_key(router: Server) -> None:
    body = {"source": V2, "mode": "canary", "canary": 0.5, "canary_key": "input.customer_id"}
    assert httpx.post(router.url + "/admin/rules", json=body, headers=AUTH).status_code == 200
    time.sleep(0.6)
    versions = {}
    for customer in range(40):
        got = {
            predict(router, "age_limit 0.9", customer_id=f"c{customer}")["decision"]["rules_version"] for _ in range(3)
        }
        assert len(got) == 1, f"customer c{customer} saw {got}"  # one customer, one group
        versions[customer] = got.pop()
    share = sum(v == "routing-2" for v in versions.values()) / len(versions)
    assert 0.2 < share < 0.8
    body = {"source": V2, "mode": "canary", "canary": 1.5}
    response = httpx.post(router.url + "/admin/rules", json=body, headers=AUTH)
    assert response.status_code == 422 and "between 0 and 1" in response.json()["error"]["message"]


def test_rules_file_watch(tmp_path: Path) -> None:
    server = start_server(ROUTER, tmp_path, "--watch-rules")
    rules_file = tmp_path / "router" / "rules.yaml"
    try:
        assert predict(server, "age_limit 0.9")["decision"]["rules_version"] == "routing-1"
        rules_file.write_text("rules:\n  - when: output.nope > 1\n    then: {queue: x}\n")  # refused
        time.sleep(1.0)
        assert predict(server, "age_limit 0.9")["decision"]["rules_version"] == "routing-1"
        assert "the changed rules file was refused" in server.log
        rules_file.write_text(V2)
        wait_for_version(server, "routing-2")
    finally:
        server.stop()


def test_cli_apply_to_the_store_and_backtest(tmp_path: Path) -> None:
    server = start_server(ROUTER, tmp_path)
    project = tmp_path / "router"
    try:
        for text in ["card_arrival 0.9", "age_limit 0.9", "age_limit 0.3", "lost_or_stolen_card 0.8"] * 5:
            predict(server, text)
        time.sleep(0.5)  # let the log flush
        proposed = tmp_path / "v2.yaml"
        proposed.write_text(V2)
        cli = [sys.executable, "-m", "shipway", "rules"]
        env_store = ["--target", str(project)]
        store_env = {"SHIPWAY_STORE_URL": server.store_url}
        import os

        env = {**os.environ, **store_env}
        out = subprocess.run(
            [*cli, "backtest", str(proposed), *env_store, "--json"], capture_output=True, text=True, env=env
        )
        assert out.returncode == 0, out.stderr
        report = orjson.loads(out.stdout)
        assert report["total"] >= 20 and report["current_version"] == "routing-1"
        assert {"from": "general", "to": "urgent", "count": 10} in report["queue_changes"]
        assert report["review"] == {"removed": 5}
        assert report["changed"] == 10
        out = subprocess.run([*cli, "apply", str(proposed), *env_store], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        wait_for_version(server, "routing-2")  # the running service picked it up from the store
        out = subprocess.run([*cli, "history", *env_store], capture_output=True, text=True, env=env)
        assert "routing-2" in out.stdout and "routing-1" in out.stdout
    finally:
        server.stop()


SUITE = """name: routing
cases:
  - name: cards are urgent
    input: {text: "card_arrival 0.9"}
    expect: {queue: urgent}
  - name: the rest is general
    input: {text: "age_limit 0.9"}
    expect: {queue: general}
"""

V3 = """version: routing-3
default: {queue: general}
rules:
  - name: urgent-cards
    when: output.intent in ["card_arrival", "lost_or_stolen_card", "compromised_card"]
    then: {queue: urgent}
"""


def gated_project(tmp_path: Path) -> Path:
    import shutil

    project = Path(shutil.copytree(ROUTER, tmp_path / "router", ignore=shutil.ignore_patterns("__pycache__")))
    (project / "validation").mkdir()
    (project / "validation" / "routing.yaml").write_text(SUITE)
    return project


def test_the_validation_gate_refuses_rules_that_fail_the_suites(tmp_path: Path) -> None:
    gated_project(tmp_path)
    server = start_server(ROUTER, tmp_path, env={"SHIPWAY_ADMIN_TOKEN": TOKEN})  # serves tmp_path/router
    try:
        response = httpx.post(server.url + "/admin/rules", json={"source": V2}, headers=AUTH)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["type"] == "gate_failed" and "routing::the rest is general" in error["message"]
        assert error["details"][0]["case"] == "the rest is general"
        time.sleep(0.5)
        assert predict(server, "age_limit 0.9")["decision"]["rules_version"] == "routing-1"  # live rules kept
        # shadow rules answer nobody: no gate
        assert (
            httpx.post(server.url + "/admin/rules", json={"source": V2, "mode": "shadow"}, headers=AUTH).status_code
            == 200
        )
        response = httpx.post(server.url + "/admin/rules", json={"source": V3}, headers=AUTH)
        assert response.status_code == 200, response.text
        wait_for_version(server, "routing-3")
    finally:
        assert server.stop() == 0


def test_cli_apply_to_the_store_is_gated_too(tmp_path: Path) -> None:
    import os

    project = gated_project(tmp_path)
    bad = tmp_path / "v2.yaml"
    bad.write_text(V2)
    env = {**os.environ, "SHIPWAY_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    cli = [sys.executable, "-m", "shipway", "rules", "apply", str(bad), "--target", str(project)]
    out = subprocess.run(cli, capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "refused by the validation gate" in out.stderr
    out = subprocess.run([*cli, "--no-gate"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "applied rules version routing-2" in out.stdout


def test_a_decision_is_logged_with_the_rules_version_that_took_it(tmp_path: Path) -> None:
    # The version used to be read when the entry was logged, after the answer was sent: rules
    # switched in between were logged for a decision the old rules took. The test is the ASGI
    # server here: it switches the rules while the answer is being sent, which is deterministic.
    project = Path(shutil.copytree(ROUTER, tmp_path / "router"))
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    service, settings = load_project(project, {"store.url": store_url})
    app = App(service, settings)

    async def one_request() -> dict:
        await app.startup()
        sent: list[dict] = []
        body = orjson.dumps({"text": "card_arrival 0.9"})
        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"x-request-id", b"r-1")]}

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                assert app.runtime.rules is not None
                app.runtime.rules.apply(V2)  # the rules switch while routing-1's answer is on its way
            sent.append(message)

        await app(scope, receive, send)
        await app.shutdown()
        return orjson.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))

    answer = asyncio.run(one_request())
    assert answer["decision"]["rules_version"] == "routing-1"
    with open_store(store_url) as store:
        (record,) = store.read_predictions()
    assert record.request_id == "r-1" and orjson.loads(record.decision or b"")["rules_version"] == "routing-1"
    assert record.rules_version == "routing-1"
