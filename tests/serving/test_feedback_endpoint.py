"""POST /feedback on a running service (in-process over ASGI) and `shipway feedback import`: joined
to logged predictions."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from conftest import SERVICES, SHIPWAY, InProcess, wait_for
from store_fixtures import TcpProxy, with_port

from shipway.monitoring.metrics.online import online_metrics
from shipway.store import open_store
from shipway.store.outcomes import describe_fields

pytest_plugins = ["store_fixtures"]

ROUTER = SERVICES / "router"


def _predict(server: InProcess, text: str) -> str:
    response = server.post("/predict", json={"text": text}, timeout=10)
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


def _accuracy(store_url: str) -> dict:
    """The metrics once every prediction has been logged (the log writes every 0.5 s)."""

    def totals() -> dict | None:
        with open_store(store_url) as store:
            found = online_metrics(store, "router", since=time.time() - 3600, step_s=60).totals
        return found if found["labelled"] >= 3 else None

    return wait_for(totals, 10, "the feedback to join")  # type: ignore[no-any-return]


def _logged(store_url: str) -> int:
    with open_store(store_url) as store:
        return len(store.read_predictions())


def test_feedback_is_joined_and_counted(serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(ROUTER)
    try:
        ids = [_predict(server, text) for text in ("card_arrival 0.9", "lost_or_stolen_card 0.4", "age_limit 0.8")]
        wait_for(lambda: _logged(server.store_url) == 3, 10, "the predictions in the store")
        body = {
            "items": [
                {"request_id": ids[0], "label": "card_arrival"},
                {"request_id": ids[1], "label": "card_arrival"},
                {"request_id": ids[2], "label": "age_limit"},
                {"request_id": ids[2], "name": "clicked", "value": True},
                {"request_id": "no-such-request", "label": "age_limit"},
            ]
        }
        response = server.post("/feedback", json=body, timeout=10)
        assert response.status_code == 200, response.text
        outcome = response.json()
        assert (outcome["accepted"], outcome["joined"], outcome["unknown"]) == (5, 4, 1)
        assert outcome["unknown_ids"] == ["no-such-request"]
        again = server.post("/feedback", json={"request_id": ids[0], "label": "card_arrival"}, timeout=10)
        assert again.json()["duplicates"] == 1
        totals = _accuracy(server.store_url)
        assert totals["labelled"] == 3 and abs(totals["accuracy"] - 2 / 3) < 1e-9
        assert totals["outcomes"]["clicked"] == {"count": 1, "mean": 1.0}
        bad = server.post("/feedback", json={"request_id": ids[0]}, timeout=10)
        assert bad.status_code == 422 and "no outcome" in bad.json()["error"]["message"]
        garbage = server.post("/feedback", content=b"{not json", timeout=10)
        assert garbage.status_code == 400 and "not JSON" in garbage.json()["error"]["message"]
        assert server.get("/feedback", timeout=10).status_code == 405
        assert _predict(server, "card_arrival 0.9")  # a bad feedback request harms nothing
    finally:
        server.stop()


def test_feedback_needs_the_token_when_one_is_set(serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(ROUTER, env={"SHIPWAY_FEEDBACK_TOKEN": "s3cret"})
    try:
        body = {"request_id": "x", "label": "card_arrival"}
        refused = server.post("/feedback", json=body, timeout=10)
        assert refused.status_code == 401 and "SHIPWAY_FEEDBACK_TOKEN" in refused.json()["error"]["message"]
        wrong = server.post("/feedback", json=body, headers={"authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401
        ok = server.post("/feedback", json=body, headers={"authorization": "Bearer s3cret"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["unknown"] == 1
    finally:
        server.stop()


def test_a_store_that_is_down_refuses_feedback_but_predictions_go_on(
    tmp_path: Path, postgres_url: str, serve_in_process: Callable[..., InProcess]
) -> None:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    server = serve_in_process(ROUTER, store_url=with_port(postgres_url, proxy.port))
    try:
        request_id = _predict(server, "card_arrival 0.9")
        proxy.stop()
        response = server.post("/feedback", json={"request_id": request_id, "label": "x"}, timeout=30)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5" and "retry later" in response.json()["error"]["message"]
        assert _predict(server, "card_arrival 0.9")
        proxy.start()
        retry = wait_for(
            lambda: (
                (r := server.post("/feedback", json={"request_id": request_id, "label": "x"}, timeout=30))
                and r.status_code == 200
                and r
            ),
            10,
            "the store to take feedback again",
        )
        assert retry.json()["accepted"] == 1
        # The prediction may itself have been spooled during the outage: once the log has
        # replayed it, the pending feedback joins.
        describe = describe_fields()

        def labelled() -> int:
            with open_store(postgres_url) as store:
                return int(
                    online_metrics(store, "router", since=time.time() - 3600, describe=describe).totals["labelled"]
                )

        wait_for(lambda: labelled() == 1, 10, "the pending feedback to join")
    finally:
        server.stop()
        proxy.stop()


def test_bulk_import_from_csv_and_json_lines(tmp_path: Path, serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(ROUTER)
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


def test_nul_in_a_prediction_and_its_feedback_is_kept_on_postgres(
    tmp_path: Path, postgres_url: str, serve_in_process: Callable[..., InProcess]
) -> None:
    # jsonb refuses \u0000 and text refuses U+0000: the prediction was answered and never
    # logged (rejected), and the feedback answered 500 store_error; SQLite took both.
    server = serve_in_process(SERVICES / "identity", store_url=postgres_url)
    try:
        body = b'{"text":"card\\u0000lost"}'
        answer = server.post("/predict", content=body, timeout=10)
        assert answer.status_code == 200, answer.text
        request_id = answer.headers["x-request-id"]
        feedback = server.post("/feedback", json={"request_id": request_id, "label": "a\x00b"}, timeout=10)
        assert feedback.status_code == 200, feedback.text
    finally:
        server.stop()  # the shutdown flushes the log
    with open_store(postgres_url) as store:
        logged = store.find_prediction(request_id)
        assert logged is not None and logged.inputs == body
        (row,) = store._query("SELECT actual FROM feedback", [])
        assert row[0] == "a\x00b"
