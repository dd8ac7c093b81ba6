"""Rules in a running service: decisions in responses and the log, admin apply/rollback with a
token, every worker swapping, shadow and canary rule sets, file watch, and backtests. The service
runs in-process over ASGI, except where every worker of a real server must swap."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from conftest import SERVICES, InProcess, Server, in_process, logged_row, start_server, wait_for

from shipway.project import Project
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


def predict(server: Server | InProcess, text: str, **extra: str) -> dict:
    response = server.post("/predict", json={"text": text, **extra}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_version(server: Server | InProcess, version: str, text: str = "age_limit 0.9") -> None:
    served = lambda: predict(server, text)["decision"]["rules_version"] == version  # noqa: E731
    wait_for(served, 10, f"rules version {version} to be served")


def logged_count(server: InProcess) -> int:
    with open_store(server.store_url) as store:
        return len(store.read_predictions())


def logged(server: Server | InProcess, request_id: str) -> dict:
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
def router(tmp_path: Path) -> Iterator[InProcess]:
    with in_process(ROUTER, tmp_path, env={"SHIPWAY_ADMIN_TOKEN": TOKEN}) as service:
        yield service


@pytest.fixture
def router_workers(tmp_path: Path) -> Iterator[Server]:
    """A real server with two workers: rules applied through one must reach the other."""
    server = start_server(ROUTER, tmp_path, "--workers", "2", env={"SHIPWAY_ADMIN_TOKEN": TOKEN})
    yield server
    assert server.stop() == 0


def test_decisions_are_returned_logged_and_counted(router: InProcess) -> None:
    answer = predict(router, "card_arrival 0.9")
    assert answer["intent"] == "card_arrival"
    decision = answer["decision"]
    assert (decision["queue"], decision["review"], decision["fired"]) == ("urgent", False, ["urgent-cards"])
    assert decision["rules_version"] == "routing-1"
    unsure = predict(router, "age_limit 0.3")["decision"]
    assert (unsure["queue"], unsure["review"], unsure["review_reason"]) == ("general", True, "low confidence")
    # fallback answers the rules' default answer; the log keeps what the model said
    response = router.post("/predict", json={"text": "gibberish 0.99"}, headers={"x-request-id": "fb-1"})
    assert response.json()["intent"] == "unknown" and response.json()["decision"]["fallback"] is True
    record = logged(router, "fb-1")
    assert record["outputs"] == {"intent": "gibberish", "probability": 0.99}
    assert record["decision"]["fired"] == ["give-up"] and record["rules_version"] == "routing-1"
    trace = router.post("/explain", json={"text": "card_arrival 0.9"}).json()
    assert [s["stage"] for s in trace["stages"]] == ["input", "predict", "rules", "output"]
    assert trace["stages"][2]["output"]["decision"]["queue"] == "urgent"
    metrics = router.get("/metrics").text
    assert 'shipway_rule_hits_total{rule="urgent-cards",rules_version="routing-1",service="router"}' in metrics
    assert 'shipway_decisions_total{queue="urgent",service="router"}' in metrics


def test_admin_needs_the_token(router: InProcess) -> None:
    response = router.post("/admin/rules", json={"source": V2})
    assert response.status_code == 401 and response.json()["error"]["type"] == "unauthorized"
    response = router.post("/admin/rules", json={"source": V2}, headers={"authorization": "Bearer nope"})
    assert response.status_code == 401
    assert predict(router, "age_limit 0.9")["decision"]["rules_version"] == "routing-1"


def test_admin_is_off_without_a_token(serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(ROUTER)
    try:
        response = server.post("/admin/rules", json={"source": V2}, headers=AUTH)
        assert response.status_code == 403 and "SHIPWAY_ADMIN_TOKEN" in response.json()["error"]["message"]
    finally:
        server.stop()


def test_a_bad_rules_file_never_replaces_good_rules(router: InProcess) -> None:
    bad = "rules:\n  - when: output.intnet == 'x'\n    then: {queue: a}\n"
    response = router.post("/admin/rules", json={"source": bad}, headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "rules_error" and "did you mean output.intent" in error["message"]
    assert error["details"][0]["line"] == 2
    for _ in range(10):  # every worker still serves the good rules
        assert predict(router, "card_arrival 0.9")["decision"]["rules_version"] == "routing-1"


def test_apply_swaps_every_worker_and_rollback_restores(router_workers: Server) -> None:
    router = router_workers
    response = router.post("/admin/rules", json={"source": V2, "actor": "ana"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["applied"]["version"] == "routing-2"
    wait_for_version(router, "routing-2")
    # within two poll intervals the other worker has swapped too
    seen = lambda: {predict(router, "age_limit 0.9")["decision"]["rules_version"] for _ in range(30)}  # noqa: E731
    wait_for(lambda: seen() == {"routing-2"}, 10, "every worker to serve routing-2")
    assert len({predict(router, "x 0.9")["decision"]["queue"] for _ in range(5)}) == 1
    history = router.get("/admin/rules", headers=AUTH).json()
    assert [e["version"] for e in history["history"]][:2] == ["routing-2", "routing-1"]
    assert history["history"][0]["actor"] == "ana"
    response = router.post("/admin/rules/rollback", json={}, headers=AUTH)
    assert response.json()["applied"] == {**response.json()["applied"], "version": "routing-1", "action": "rollback"}
    wait_for_version(router, "routing-1")
    response = router.post("/admin/rules/rollback", json={"version": "nope"}, headers=AUTH)
    assert response.status_code == 404 and "known: routing-1, routing-2" in response.json()["error"]["message"]


def test_shadow_rules_are_logged_beside_the_live_ones(router: InProcess) -> None:
    response = router.post("/admin/rules", json={"source": V2, "mode": "shadow"}, headers=AUTH)
    assert response.status_code == 200
    response = router.post("/predict", json={"text": "age_limit 0.9"}, headers={"x-request-id": "sh-1"})
    record = logged(router, "sh-1")  # one worker: the rules it swapped in answer its next request
    assert response.json()["decision"]["queue"] == "general"  # the live rules answer
    assert record["decision"]["rules_version"] == "routing-1"
    assert record["shadow"]["rules_version"] == "routing-2" and record["shadow"]["queue"] == "urgent"


def test_canary_share_is_stable_per_key(router: InProcess) -> None:
    body = {"source": V2, "mode": "canary", "canary": 0.5, "canary_key": "input.customer_id"}
    assert router.post("/admin/rules", json=body, headers=AUTH).status_code == 200  # swapped before it answers
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
    response = router.post("/admin/rules", json=body, headers=AUTH)
    assert response.status_code == 422 and "between 0 and 1" in response.json()["error"]["message"]


def test_rules_file_watch(tmp_path: Path, serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(ROUTER, "--watch-rules")
    rules_file = tmp_path / "router" / "rules.yaml"
    try:
        assert predict(server, "age_limit 0.9")["decision"]["rules_version"] == "routing-1"
        rules_file.write_text("rules:\n  - when: output.nope > 1\n    then: {queue: x}\n")  # refused
        wait_for(lambda: "the changed rules file was refused" in server.log, 10, "the refusal in the log")
        assert predict(server, "age_limit 0.9")["decision"]["rules_version"] == "routing-1"
        rules_file.write_text(V2)
        wait_for_version(server, "routing-2")
    finally:
        server.stop()


def test_cli_apply_to_the_store_and_backtest(tmp_path: Path, serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(ROUTER)
    project = tmp_path / "router"
    try:
        for text in ["card_arrival 0.9", "age_limit 0.9", "age_limit 0.3", "lost_or_stolen_card 0.8"] * 5:
            predict(server, text)
        wait_for(lambda: logged_count(server) == 20, 10, "the log to write the 20 predictions")
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


def test_the_validation_gate_refuses_rules_that_fail_the_suites(
    tmp_path: Path, serve_in_process: Callable[..., InProcess]
) -> None:
    gated_project(tmp_path)
    server = serve_in_process(ROUTER, env={"SHIPWAY_ADMIN_TOKEN": TOKEN})  # serves tmp_path/router
    try:
        response = server.post("/admin/rules", json={"source": V2}, headers=AUTH)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["type"] == "gate_failed" and "routing::the rest is general" in error["message"]
        assert error["details"][0]["case"] == "the rest is general"
        assert predict(server, "age_limit 0.9")["decision"]["rules_version"] == "routing-1"  # live rules kept
        # shadow rules answer nobody: no gate
        assert server.post("/admin/rules", json={"source": V2, "mode": "shadow"}, headers=AUTH).status_code == 200
        response = server.post("/admin/rules", json={"source": V3}, headers=AUTH)
        assert response.status_code == 200, response.text
        wait_for_version(server, "routing-3")
    finally:
        server.stop()


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
    app = App(Project.load(project, {"store.url": store_url}))

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
