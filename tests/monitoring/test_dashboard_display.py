"""What the dashboard shows, measured in the real headless Chromium: no legend over an axis's
labels, no plot toolbar over a title, the rules version of every version pair, and summary
cards that agree with the API for a service whose feedback has no classes (a regression)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import SERVICES, Server, start_server
from test_monitoring_dashboard import _console_errors, _rendered_plots, _screenshot, _wait, browser  # noqa: F401

from shipway.core.artifacts import write_manifest
from shipway.monitoring.drift.profile import Profile
from shipway.store import open_store

N = 24
INTENTS = ["card_arrival", "lost_card", "exchange_rate", "top_up"]

# Every pair of boxes that must not meet, per drawn plot: the legend against tick labels and
# axis titles, the toolbar (plotly's "modebar") against the title.
OVERLAPS = """
function box(e) { const r = e.getBoundingClientRect(); return r.width && r.height ? r : null; }
function meet(a, b) { return !!(a && b && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom); }
return [...document.querySelectorAll("[data-figure]")].map(function (div) {
  const legend = div.querySelector("g.legend"), title = div.querySelector(".gtitle");
  const bar = div.querySelector(".modebar");
  const labels = [...div.querySelectorAll(".xtitle, .x2title, .xtick text")];
  return {
    figure: div.getAttribute("data-figure"),
    title: title ? title.textContent : "",
    has_bar: !!(bar && box(bar)),
    legend_over: labels.filter(l => meet(legend && box(legend), box(l))).map(l => l.textContent),
    bar_over_title: meet(bar && box(bar), title && box(title)),
  };
});
"""


def _post(server: Server, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(server.url + path, content=orjson.dumps(body), headers=headers, timeout=30)


def _wait_logged(server: Server, service: str, n: int) -> None:
    with open_store(server.store_url) as store:
        deadline = time.monotonic() + 30
        while store.count_predictions(service) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.count_predictions(service) == n


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The router test service (it has rules) with a drift profile, traffic and labels."""
    tmp = tmp_path_factory.mktemp("display")
    project = Path(shutil.copytree(SERVICES / "router", tmp / "router", ignore=shutil.ignore_patterns("__pycache__")))
    inputs = [{"text": f"{INTENTS[i % 2]} 0.9"} for i in range(100)]
    outputs = [{"intent": INTENTS[i % 2], "probability": 0.9} for i in range(100)]
    Profile.build(inputs, outputs).save(project / "artifacts")
    write_manifest(project / "artifacts")
    server = start_server(project, tmp)
    try:
        for i in range(N):
            body = {"text": f"{INTENTS[i % 4]} 0.{3 + i % 6}"}
            assert _post(server, "/predict", body, **{"x-request-id": f"d{i}"}).status_code == 200
        _wait_logged(server, "router", N)
        labels = [{"request_id": f"d{i}", "label": INTENTS[i % 4]} for i in range(10)]
        assert _post(server, "/feedback", labels).json()["joined"] == 10
        yield server
    finally:
        server.kill()


def test_legends_and_toolbars_leave_every_title_and_label_clear(router: Server, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(router.url + "/dashboard?since=1h")
    figures = browser.find_elements(By.CSS_SELECTOR, "[data-figure]")
    _wait(browser, lambda d: len(_rendered_plots(d)) == len(figures), "every plot to be drawn")
    assert any(f.get_attribute("data-figure").startswith("drift-") for f in figures)
    for figure in figures:  # the toolbar shows while the pointer is over a plot
        ActionChains(browser).move_to_element(figure).perform()
    boxes = browser.execute_script(OVERLAPS)
    assert len(boxes) == len(figures) and all(b["has_bar"] for b in boxes), boxes
    assert [b for b in boxes if b["legend_over"] or b["bar_over_title"]] == []
    # Time axes carry no axis title to collide with: the titles say the times are UTC.
    for key in ("traffic", "latency", "quality"):
        assert next(b for b in boxes if b["figure"] == key)["title"].endswith("UTC)")
    assert not _console_errors(browser)
    _screenshot(browser, "dashboard-display.png")


def test_the_versions_table_names_each_model_and_rules_version(router: Server, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(router.url + "/dashboard?since=1h&by=model_version")
    rows = browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    shown = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    with open_store(router.store_url) as store:
        logged = store.read_predictions(service="router")
    pairs = {(r.model_version, r.rules_version) for r in logged}
    assert all(rules for _, rules in pairs)  # the router's rules file has a version
    assert {(row[0], row[1]) for row in shown} == pairs
    assert sum(int(row[2].replace(",", "")) for row in shown) == len(logged)
    assert sum(int(row[3]) for row in shown) == 10
    api = httpx.get(router.url + "/dashboard/api/versions", params={"since": "1h"}, timeout=30).json()
    assert {(v["model_version"], v["rules_version"], v["requests"]) for v in api["versions"]} == {
        (row[0], row[1], int(row[2].replace(",", ""))) for row in shown
    }


def test_a_regression_with_feedback_is_not_shown_as_no_feedback(tmp_path: Path, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    server = start_server(SERVICES / "binary_scorer", tmp_path)
    try:
        for i in range(N):
            assert _post(server, "/predict", {"text": str(i * 1.5)}, **{"x-request-id": f"g{i}"}).status_code == 200
        _wait_logged(server, "binary_scorer", N)
        outcomes = [{"request_id": f"g{i}", "label": i * 1.5 + (i % 3)} for i in range(N)]  # spend, not 0/1
        assert _post(server, "/feedback", outcomes).json()["joined"] == N
        totals = httpx.get(server.url + "/dashboard/api/metrics", params={"since": "1h"}, timeout=30).json()["totals"]
        browser.get(server.url + "/dashboard?since=1h")
        figures = len(browser.find_elements(By.CSS_SELECTOR, "[data-figure]"))
        _wait(browser, lambda d: len(_rendered_plots(d)) == figures, "every plot to be drawn")

        assert totals["kind"] == "regression" and totals["labelled"] == N and totals["accuracy"] is None
        series = httpx.get(server.url + "/dashboard/api/metrics", params={"since": "1h"}, timeout=30).json()["series"]
        assert all(p["accuracy"] is None for s in series for p in s["points"])
        card = browser.find_element(By.CSS_SELECTOR, '[data-metric="labelled"] b').text
        assert card == str(totals["labelled"])
        accuracy = browser.find_element(By.CSS_SELECTOR, '[data-metric="accuracy"]').text
        assert "no feedback yet" not in accuracy and "regression" in accuracy
        for key in ("quality", "per_class", "calibration"):  # empty, and saying why, without 0% bars
            text = browser.find_element(By.CSS_SELECTOR, f'[data-figure="{key}"]').text
            assert "no feedback yet" not in text and "regression" in text, (key, text)
        assert "no feedback yet" not in browser.find_element(By.ID, "quality").text
        mae = sum(i % 3 for i in range(N)) / N
        assert browser.find_element(By.ID, "regression").text.split("MAE ")[1].startswith(f"{mae:.4g}")
        assert totals["regression"]["mae"] == pytest.approx(mae)
        assert not _console_errors(browser)
        _screenshot(browser, "dashboard-regression.png")
    finally:
        server.kill()
