"""POST /feedback on a running service and `shipway feedback import`: joined to logged predictions."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from conftest import SERVICES, SHIPWAY, Server, start_server
from store_fixtures import TcpProxy, with_port

from shipway.monitoring.metrics.online import online_metrics
from shipway.store import open_store
from shipway.store.outcomes import describe_fields

pytest_plugins = ["store_fixtures"]

ROUTER = SERVICES / "router"


def _predict(server: Server, text: str) -> str:
    response = httpx.post(server.url + "/predict", json={"text": text}, timeout=10)
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


def _accuracy(store_url: str, tries: int = 100) -> dict:
    """The metrics once every prediction has been logged (the log writes every 0.5 s)."""
    for _ in range(tries):
        with open_store(store_url) as store:
            totals = online_metrics(store, "router", since=time.time() - 3600, step_s=60).totals
        if totals["labelled"] >= 3:
            return totals
        time.sleep(0.1)
    raise AssertionError(f"feedback never joined: {totals}")


def test_feedback_is_joined_and_counted(tmp_path: Path) -> None:
    server = start_server(ROUTER, tmp_path)
    try:
        ids = [_predict(server, text) for text in ("card_arrival 0.9", "lost_or_stolen_card 0.4", "age_limit 0.8")]
        time.sleep(1.2)  # one flush interval and more: the predictions are in the store
        body = {
            "items": [
                {"request_id": ids[0], "label": "card_arrival"},
                {"request_id": ids[1], "label": "card_arrival"},
                {"request_id": ids[2], "label": "age_limit"},
                {"request_id": ids[2], "name": "clicked", "value": True},
                {"request_id": "no-such-request", "label": "age_limit"},
            ]
        }
        response = httpx.post(server.url + "/feedback", json=body, timeout=10)
        assert response.status_code == 200, response.text
        outcome = response.json()
        assert (outcome["accepted"], outcome["joined"], outcome["unknown"]) == (5, 4, 1)
        assert outcome["unknown_ids"] == ["no-such-request"]
        again = httpx.post(server.url + "/feedback", json={"request_id": ids[0], "label": "card_arrival"}, timeout=10)
        assert again.json()["duplicates"] == 1
        totals = _accuracy(server.store_url)
        assert totals["labelled"] == 3 and abs(totals["accuracy"] - 2 / 3) < 1e-9
        assert totals["outcomes"]["clicked"] == {"count": 1, "mean": 1.0}
        bad = httpx.post(server.url + "/feedback", json={"request_id": ids[0]}, timeout=10)
        assert bad.status_code == 422 and "no outcome" in bad.json()["error"]["message"]
        garbage = httpx.post(server.url + "/feedback", content=b"{not json", timeout=10)
        assert garbage.status_code == 400 and "not JSON" in garbage.json()["error"]["message"]
        assert httpx.get(server.url + "/feedback", timeout=10).status_code == 405
        assert _predict(server, "card_arrival 0.9")  # a bad feedback request harms nothing
    finally:
        server.kill()


def test_feedback_needs_the_token_when_one_is_set(tmp_path: Path) -> None:
    server = start_server(ROUTER, tmp_path, env={"SHIPWAY_FEEDBACK_TOKEN": "s3cret"})
    try:
        body = {"request_id": "x", "label": "card_arrival"}
        refused = httpx.post(server.url + "/feedback", json=body, timeout=10)
        assert refused.status_code == 401 and "SHIPWAY_FEEDBACK_TOKEN" in refused.json()["error"]["message"]
        wrong = httpx.post(server.url + "/feedback", json=body, headers={"authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401
        ok = httpx.post(server.url + "/feedback", json=body, headers={"authorization": "Bearer s3cret"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["unknown"] == 1
    finally:
        server.kill()


def test_a_store_that_is_down_refuses_feedback_but_predictions_go_on(tmp_path: Path, postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    server = start_server(ROUTER, tmp_path, store_url=with_port(postgres_url, proxy.port))
    try:
        request_id = _predict(server, "card_arrival 0.9")
        proxy.stop()
        response = httpx.post(server.url + "/feedback", json={"request_id": request_id, "label": "x"}, timeout=30)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5" and "retry later" in response.json()["error"]["message"]
        assert _predict(server, "card_arrival 0.9")
        proxy.start()
        for _ in range(100):
            retry = httpx.post(server.url + "/feedback", json={"request_id": request_id, "label": "x"}, timeout=30)
            if retry.status_code == 200:
                break
            time.sleep(0.1)
        assert retry.status_code == 200 and retry.json()["accepted"] == 1
        # The prediction may itself have been spooled during the outage: once the log has
        # replayed it, the pending feedback joins.
        describe = describe_fields()
        for _ in range(100):
            with open_store(postgres_url) as store:
                totals = online_metrics(store, "router", since=time.time() - 3600, describe=describe).totals
            if totals["labelled"] == 1:
                break
            time.sleep(0.1)
        assert totals["labelled"] == 1
    finally:
        server.kill()
        proxy.stop()


def test_bulk_import_from_csv_and_json_lines(tmp_path: Path) -> None:
    server = start_server(ROUTER, tmp_path)
    try:
        ids = [_predict(server, text) for text in ("card_arrival 0.9", "age_limit 0.8", "age_limit 0.7")]
    finally:
        server.stop()
    project = tmp_path / "router"
    csv = tmp_path / "labels.csv"
    csv.write_text(f"request_id,label\n{ids[0]},card_arrival\n{ids[1]},card_arrival\nmissing,age_limit\n")
    run = subprocess.run(
        [*SHIPWAY, "feedback", "import", str(csv), "--project", str(project), "--store", server.store_url, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert orjson.loads(run.stdout)["joined"] == 2 and orjson.loads(run.stdout)["unknown_ids"] == ["missing"]
    jsonl = tmp_path / "clicks.jsonl"
    jsonl.write_text(
        "\n".join(orjson.dumps({"request_id": i, "name": "clicked", "value": False}).decode() for i in ids)
    )
    run = subprocess.run(
        [*SHIPWAY, "feedback", "import", str(jsonl), "--project", str(project), "--store", server.store_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0 and "3 outcomes recorded" in run.stdout and "3 joined" in run.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("id,truth\n1,a\n")
    run = subprocess.run(
        [*SHIPWAY, "feedback", "import", str(bad), "--project", str(project), "--store", server.store_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and "needs request_id and label" in run.stderr


@pytest.mark.parametrize("missing", ["nowhere.csv"])
def test_import_of_a_missing_file_says_so(tmp_path: Path, missing: str) -> None:
    run = subprocess.run(
        [*SHIPWAY, "feedback", "import", str(tmp_path / missing), "--project", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and "no feedback file" in run.stderr


def test_nul_in_a_prediction_and_its_feedback_is_kept_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    # jsonb refuses \u0000 and text refuses U+0000: the prediction was answered and never
    # logged (rejected), and the feedback answered 500 store_error; SQLite took both.
    server = start_server(SERVICES / "identity", tmp_path, store_url=postgres_url)
    try:
        body = b'{"text":"card\\u0000lost"}'
        answer = httpx.post(server.url + "/predict", content=body, timeout=10)
        assert answer.status_code == 200, answer.text
        request_id = answer.headers["x-request-id"]
        feedback = httpx.post(server.url + "/feedback", json={"request_id": request_id, "label": "a\x00b"}, timeout=10)
        assert feedback.status_code == 200, feedback.text
    finally:
        assert server.stop() == 0  # SIGTERM flushes the log
    with open_store(postgres_url) as store:
        logged = store.find_prediction(request_id)
        assert logged is not None and logged.inputs == body
        (row,) = store._query("SELECT actual FROM feedback", [])
        assert row[0] == "a\x00b"
