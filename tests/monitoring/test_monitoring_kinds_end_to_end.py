"""Score and ranked services end to end: a real server logs predictions into a real SQLite store,
0/1 labels or ranked items come back as feedback, and the dashboard (in a real headless Chromium),
its API and `shipway monitor metrics` show the metrics the output kind needs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import SERVICES, SHIPWAY, InProcess, Server, start_server, wait_for
from sklearn import metrics as sk

from shipway.store import open_store
from tests.monitoring.test_monitoring_dashboard import _console_errors, _rendered_plots, _screenshot, _wait, browser  # noqa: F401

N = 60


def _post(server: Server | InProcess, path: str, body: Any, **headers: str) -> httpx.Response:
    return server.post(path, content=orjson.dumps(body), headers=headers, timeout=30)


def _serve(name: str, tmp: Path, inputs: list[str]) -> Server:
    return _predicted(start_server(SERVICES / name, tmp), name, inputs)


def _predicted(server: Any, name: str, inputs: list[str]) -> Any:
    """`server` once it has answered and logged a prediction for each of `inputs`."""
    for i, text in enumerate(inputs):
        assert _post(server, "/predict", {"text": text}, **{"x-request-id": f"r{i}"}).status_code == 200
    with open_store(server.store_url) as store:
        wait_for(lambda: store.count_predictions(name) == len(inputs), 30, "every prediction to be logged")
    return server


SCORES = [round((i + 0.5) / N, 4) for i in range(N)]
LABELS = [int(s > 0.5) ^ int(i % 7 == 0) for i, s in enumerate(SCORES)]  # right but for every 7th


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _serve("binary_scorer", tmp_path_factory.mktemp("scorer"), [str(s) for s in SCORES])
    try:
        feedback = [{"request_id": f"r{i}", "label": y} for i, y in enumerate(LABELS)]
        assert _post(server, "/feedback", feedback).json()["joined"] == N
        yield server
    finally:
        server.kill()


def test_a_score_service_shows_binary_metrics_in_the_browser(scorer: Server, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(scorer.url + "/dashboard?since=1h")
    figures = len(browser.find_elements(By.CSS_SELECTOR, "[data-figure]"))
    _wait(browser, lambda d: len(_rendered_plots(d)) == figures, "every plot to be drawn")
    assert not _console_errors(browser)
    # Accuracy over time is drawn, not "no feedback yet".
    assert "no feedback yet" not in browser.find_element(By.CSS_SELECTOR, '[data-figure="quality"]').text
    accuracy = sk.accuracy_score(LABELS, [s >= 0.5 for s in SCORES])
    assert browser.find_element(By.CSS_SELECTOR, '[data-metric="labelled"] b').text == str(N)
    assert browser.find_element(By.CSS_SELECTOR, '[data-metric="accuracy"] b').text == f"{accuracy:.1%}"
    binary = browser.find_element(By.ID, "binary").text
    assert f"ROC AUC {sk.roc_auc_score(LABELS, SCORES):.4g}" in binary
    assert f"Brier score {sk.brier_score_loss(LABELS, SCORES):.4g}" in binary
    # The per-class bars are those of 1 and 0 at the threshold, not 0% bars of labels never predicted.
    recall = browser.execute_script(
        "const f = document.querySelector('[data-figure=\"per_class\"]');"
        "return f.data.filter(t => t.name === 'recall')[0].x;"
    )
    assert sorted(recall) == sorted(
        [
            sk.recall_score(LABELS, [s >= 0.5 for s in SCORES]),
            sk.recall_score(LABELS, [s >= 0.5 for s in SCORES], pos_label=0),
        ]
    )
    # The binary metrics per bucket are drawn under the panel, one point per bucket with outcomes.
    lines = browser.execute_script(
        "const f = document.querySelector('#binary [data-figure=\"outcome_series\"]');"
        "return f.data.map(t => [t.name, t.y]);"
    )
    assert [name for name, _ in lines] == ["ROC AUC", "PR AUC", "Brier score"]
    assert lines[0][1] and all(0 <= auc <= 1 for auc in lines[0][1])
    _screenshot(browser, "dashboard-binary.png")


def test_shipway_monitor_metrics_prints_tables_and_json(scorer: Server) -> None:
    project = scorer.log_path.parent / "binary_scorer"
    command = [*SHIPWAY, "monitor", "metrics", str(project), "--store", scorer.store_url, "--since", "1h"]
    text = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "output kind: binary" in text.stdout and "ROC AUC" in text.stdout and "Brier score" in text.stdout
    as_json = subprocess.run([*command, "--json", "--by", "model_version"], capture_output=True, timeout=120)
    metrics = orjson.loads(as_json.stdout)
    assert metrics["totals"]["binary"]["count"] == N and metrics["by"] == "model_version"
    assert sum(bucket["count"] for bucket in metrics["kind_series"]) == N
    assert "bucket (UTC)" in text.stdout  # the binary metrics per bucket
    bad = subprocess.run([*command[:-1], "yesterday-ish"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "yesterday-ish" in bad.stderr


def test_a_ranked_service_shows_hit_rate_mrr_and_ndcg(serve_in_process: Callable[..., InProcess]) -> None:
    words = ["card_arrival", "lost_card", "exchange_rate", "top_up"]
    inputs = [" ".join(words[i % 4 :] + words[: i % 4]) for i in range(N)]
    server = _predicted(serve_in_process(SERVICES / "ranker"), "ranker", inputs)
    try:
        clicked = [{"request_id": f"r{i}", "name": "clicked", "value": words[i % 3]} for i in range(N)]
        labels = [{"request_id": f"r{i}", "label": words[(i + i % 2) % 4]} for i in range(N)]
        assert _post(server, "/feedback", labels + clicked).json()["joined"] == 2 * N
        totals = server.get("/dashboard/api/metrics", params={"since": "1h"}, timeout=30).json()["totals"]
        page = server.get("/dashboard", params={"since": "1h"}, timeout=30).text
    finally:
        server.stop()
    ranks = [1 + (i % 2) for i in range(N)]  # the label is the first or the second item
    assert totals["kind"] == "ranking"
    assert totals["accuracy"] == sum(r == 1 for r in ranks) / N
    assert totals["ranking"]["mrr"] == pytest.approx(sum(1 / r for r in ranks) / N)
    assert totals["ranking"]["outcomes"]["clicked"]["count"] == N
    assert 'id="ranking"' in page and "MRR" in page
