"""The dashboard's leaderboard page, in the real headless Chromium, against `shipway dashboard`
serving the store of a project that ran `shipway try`."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import SHIPWAY, free_port
from recipe_projects import text_project
from test_monitoring_dashboard import _console_errors, _wait, browser  # noqa: F401 (the fixture)

from shipway.cli.main import main as cli

REFERENCES = """
references:
  - name: "Published <b>model</b>"
    test_accuracy: 0.5
    source: A paper, table 2
"""


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = text_project(tmp_path_factory.mktemp("topics"))
    (root / "leaderboard.yaml").write_text(REFERENCES)
    result = CliRunner().invoke(cli, ["try", "tfidf-nb", "tfidf-lr", "--target", str(root), "--seeds", "2"])
    assert result.exit_code == 0, result.output
    port = free_port()
    store = f"sqlite:///{root / '.shipway' / 'shipway.db'}"
    env = {k: v for k, v in os.environ.items() if k != "SHIPWAY_ADMIN_TOKEN"}
    log = root / "dashboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*SHIPWAY, "dashboard", str(root), "--store", store, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}/dashboard"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/api/leaderboard", timeout=30)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield {"url": url, "root": root}
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_leaderboard_page_ranks_the_runs_in_a_browser(dashboard: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(dashboard["url"] + "/leaderboard")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.leaderboard tbody tr"), "the table")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.leaderboard tbody tr")
    kinds = [r.get_attribute("data-kind") for r in rows]
    assert sorted(kinds) == ["reference", "run", "run"]
    text = [r.text for r in rows]
    assert any(t.startswith("1 ") for t in text)
    reference = rows[kinds.index("reference")].text
    assert "Published <b>model</b> reference" in reference and "A paper, table 2" in reference
    run_rows = [rows[i].text for i, k in enumerate(kinds) if k == "run"]
    assert any("tfidf-lr" in t for t in run_rows) and any("tfidf-nb" in t for t in run_rows)
    assert all(" 2 " in t for t in run_rows)  # two seeds each
    assert browser.find_element(By.ID, "task").text.endswith(":category:accuracy")
    assert not browser.find_elements(By.CSS_SELECTOR, "b"), "text from leaderboard.yaml must not become markup"
    assert _console_errors(browser) == []


def test_the_leaderboard_api_and_an_unknown_task(dashboard: dict[str, Any]) -> None:
    data = httpx.get(dashboard["url"] + "/api/leaderboard", timeout=30).json()
    assert data["task"] in data["tasks"] and len(data["rows"]) == 3
    assert [r["test_mean"] for r in data["rows"]] == sorted((r["test_mean"] for r in data["rows"]), reverse=True)
    missing = httpx.get(dashboard["url"] + "/leaderboard", params={"task": "nope"}, timeout=30)
    assert missing.status_code == 400 and "no task &#39;nope&#39; in the store" in missing.text
