"""The monitoring dashboard and the HTML report, end to end: a real service logs real
predictions into a real SQLite store, real feedback and an alert event join them, and a
real headless Chromium (Debian's, driven by Selenium through Debian's chromedriver) loads
the pages. Screenshots land in test-artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import SERVICES, SHIPWAY, Server, free_port, start_server
from starlette.requests import Request

from shipway.core.artifacts import write_manifest
from shipway.errors import ConfigError
from shipway.monitoring.dashboard import access
from shipway.monitoring.dashboard.plots import per_class
from shipway.monitoring.dashboard.snapshot import Window
from shipway.monitoring.drift.profile import Profile
from shipway.store import open_store

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
TOKEN = "dashboard-test-token"
EVIL = "<script>alert(1)</script>"
SERVICE = "router"

# The router test service predicts the first word of the text at the probability that follows.
INTENTS = ["card_arrival", "lost_card", "exchange_rate", "top_up"]
SETTINGS = """
[monitoring]
dashboard_refresh_s = 1

[monitoring.drift]
embedder = "hashing"
"""
SUITE = """
name: smoke
fields: {label: intent}
cases:
  - name: card arrival is understood
    input: {text: "card_arrival 0.9"}
    expect: {label: card_arrival}
  - name: a lost card is not a late one
    input: {text: "lost_card 0.9"}
    expect: {label: card_arrival}
"""


def _post(server: Server, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(server.url + path, content=orjson.dumps(body), headers=headers, timeout=30)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served router with a drift profile, a validation report, logged traffic, feedback and an alert."""
    tmp = tmp_path_factory.mktemp("dashboard")
    project = Path(shutil.copytree(SERVICES / "router", tmp / "router", ignore=shutil.ignore_patterns("__pycache__")))
    with (project / "shipway.toml").open("a") as f:
        f.write(SETTINGS)
    # The reference: confident predictions of the first two intents only.
    ref_inputs = [{"text": f"{INTENTS[i % 2]} 0.9", "customer_id": f"c{i % 5}"} for i in range(200)]
    ref_outputs = [{"intent": INTENTS[i % 2], "probability": 0.85 + (i % 10) / 100} for i in range(200)]
    Profile.build(ref_inputs, ref_outputs).save(project / "artifacts")
    write_manifest(project / "artifacts")  # as training does, last: every load checks it
    report = project / ".shipway" / "validation.json"
    (project / "validation").mkdir()
    (project / "validation" / "smoke.yaml").write_text(SUITE)
    validate = subprocess.run(
        [*SHIPWAY, "validate", "--target", str(project), str(project / "validation"), "--json", str(report)],
        capture_output=True,
        text=True,
    )
    assert validate.returncode == 1 and report.is_file(), validate.stdout + validate.stderr  # one case fails

    server = start_server(project, tmp, env={"SHIPWAY_ADMIN_TOKEN": TOKEN})
    try:
        # Live traffic drifts: all four intents, less confident than the reference.
        for i in range(40):
            text = f"{INTENTS[i % 4]} 0.{3 + i % 6}"
            response = _post(
                server, "/predict", {"text": text, "customer_id": f"c{i % 7}"}, **{"x-request-id": f"q{i}"}
            )
            assert response.status_code == 200, response.text
        assert _post(server, "/predict", {"text": f"{EVIL} 0.2"}, **{"x-request-id": "evil"}).status_code == 200
        assert _post(server, "/predict", {"text": 42}).status_code == 422  # an error, counted as one
        store_url = server.store_url
        with open_store(store_url) as store:
            deadline = time.monotonic() + 30
            while store.count_predictions(SERVICE) < 41 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.count_predictions(SERVICE) == 41
        labels = [{"request_id": f"q{i}", "label": INTENTS[i % 4] if i % 3 else "top_up"} for i in range(20)]
        joined = _post(server, "/feedback", labels, authorization=f"Bearer {TOKEN}")
        assert joined.status_code == 200 and joined.json()["joined"] == 20, joined.text
        fired_at = time.time()
        with open_store(store_url) as store:
            changed = store.alert_transition(SERVICE, "error_rate_high", True, fired_at, {"value": 0.024})
        assert changed
        yield {"server": server, "project": project, "store_url": store_url, "tmp": tmp}
    finally:
        server.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="shipway-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,2400",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _console_errors(driver: Any) -> list[dict[str, Any]]:
    """Console errors since the last call (reading the log empties it)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _wait(driver: Any, condition: Any, what: str, timeout: float = 30) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page redraws its plots on every refresh: an element can go stale between two looks.
    wait = WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(condition, message=f"waited {timeout} s for {what}")


def _rendered_plots(driver: Any) -> list[Any]:
    """Plot containers plotly has drawn into: an SVG with marks or an annotation in it."""
    from selenium.webdriver.common.by import By

    drawn = []
    for div in driver.find_elements(By.CSS_SELECTOR, "[data-figure]"):
        svgs = div.find_elements(By.CSS_SELECTOR, "svg.main-svg")
        marks = div.find_elements(By.CSS_SELECTOR, "g.trace path, g.trace rect, g.point path, g.annotation")
        if svgs and marks:
            drawn.append(div)
    return drawn


def _fetched(driver: Any) -> list[str]:
    """Every resource the page has fetched (scripts, stylesheets, XHR), by URL."""
    return list(driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"))


def _screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    # The whole page, not the first screenful: a window as tall as the document.
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, min(height + 120, 12_000))
    _wait(driver, lambda d: len(_rendered_plots(d)) == len(d.find_elements("css selector", "[data-figure]")), "plots")
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 2400)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 600, (width, height)
    assert len(data) > 50_000, f"{path} is {len(data)} bytes: too small to show the page"
    return path


def _login(driver: Any, server: Server) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url + "/dashboard/login")
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait(driver, lambda d: d.current_url.rstrip("/").endswith("/dashboard"), "the redirect to the dashboard")


def test_the_dashboard_renders_in_a_browser(deployed: dict[str, Any], browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    server = deployed["server"]
    _login(browser, server)
    figures = len(browser.find_elements(By.CSS_SELECTOR, "[data-figure]"))
    assert figures >= 8  # the metrics plots and one per drift feature
    _wait(browser, lambda d: len(_rendered_plots(d)) == figures, "every plot to be drawn")
    errors = _console_errors(browser)
    assert not errors, errors
    fetched = _fetched(browser)
    assert fetched and all(url.startswith(server.url + "/dashboard/") for url in fetched), fetched  # no CDN

    # The numbers are the store's.
    with open_store(deployed["store_url"]) as store:
        logged = store.count_predictions(SERVICE)
    card = browser.find_element(By.CSS_SELECTOR, '[data-metric="requests"] b').text
    assert card == f"{logged + 1:,}"  # and the request refused with 422, counted as an error
    assert browser.find_element(By.CSS_SELECTOR, '[data-metric="errors"] b').text == "1"
    assert browser.find_element(By.CSS_SELECTOR, '[data-metric="labelled"] b').text == "20"
    assert browser.find_element(By.CSS_SELECTOR, '[data-metric="alerts"] b').text == "1"
    assert "error_rate_high" in browser.find_element(By.ID, "alerts").text
    assert "FIRING" in browser.find_element(By.ID, "alerts").text
    assert "FAILING" in browser.find_element(By.ID, "validation").text
    assert "a lost card is not a late one" in browser.find_element(By.ID, "validation").text
    drift = browser.find_element(By.ID, "drift")
    assert int(drift.find_element(By.CSS_SELECTOR, ".verdict").get_attribute("data-drifted")) >= 1
    assert "output.probability" in drift.text

    # Customer text is shown as text, never run.
    assert EVIL in browser.find_element(By.ID, "uncertain").text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 - the property raises when no dialog is open
    _screenshot(browser, "dashboard.png")

    # The page refreshes its panels from /dashboard/panels, and draws them again.
    _wait(browser, lambda d: d.find_element(By.ID, "status").text.startswith("updated"), "an auto-refresh")
    _wait(browser, lambda d: len(_rendered_plots(d)) == figures, "the refreshed plots")
    assert not _console_errors(browser)
    # New traffic shows up without a reload.
    assert _post(server, "/predict", {"text": "top_up 0.95"}, **{"x-request-id": "late"}).status_code == 200
    card = '[data-metric="requests"] b'
    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, card).text == f"{logged + 2:,}", "the new request")
    _wait(browser, lambda d: len(_rendered_plots(d)) == figures, "the plots of the new panels")

    # The slowest prediction links to its trace, re-run by the service's pipeline.
    link = browser.find_element(By.CSS_SELECTOR, "#slowest a.trace")
    request_id = link.text
    link.click()
    _wait(browser, lambda d: d.find_elements(By.ID, "trace"), "the prediction page")
    assert request_id in browser.find_element(By.ID, "record").text
    stages = [row.text.split()[0] for row in browser.find_elements(By.CSS_SELECTOR, "#trace table.stages tbody tr")]
    assert stages[0] == "input" and "predict" in stages and stages[-1] == "output"
    assert not _console_errors(browser)
    _screenshot(browser, "dashboard-prediction.png")


def test_the_api_answers_with_the_store_numbers(deployed: dict[str, Any]) -> None:
    server = deployed["server"]
    auth = {"authorization": f"Bearer {TOKEN}"}
    with server.client(headers=auth) as client, open_store(deployed["store_url"]) as store:
        metrics = client.get("/dashboard/api/metrics", params={"since": "1h", "by": "none"}).json()
        logged = store.read_predictions(service=SERVICE)
        assert metrics["totals"]["requests"] == len(logged) + 1
        assert metrics["totals"]["labelled"] == 20
        # q0, q3, q6... were labelled top_up; the rest with what was predicted.
        correct = sum(1 for i in range(20) if (INTENTS[i % 4] if i % 3 else "top_up") == INTENTS[i % 4])
        assert 0 < correct < 20
        assert metrics["totals"]["accuracy"] == pytest.approx(correct / 20)

        slowest = client.get("/dashboard/api/predictions", params={"order": "slowest", "limit": 5}).json()
        expected = sorted(logged, key=lambda r: -r.latency_ms)[:5]
        assert [p["request_id"] for p in slowest["predictions"]] == [r.request_id for r in expected]

        uncertain = client.get("/dashboard/api/predictions", params={"order": "uncertain", "limit": 3}).json()
        confidences = [p["confidence"] for p in uncertain["predictions"]]
        assert confidences == sorted(confidences) and confidences[0] == pytest.approx(0.2)  # the EVIL one

        alerts = client.get("/dashboard/api/alerts").json()["events"]
        assert [(a["key"], a["firing"]) for a in alerts] == [("error_rate_high", True)]
        drift = client.get("/dashboard/api/drift", params={"since": "1h"}).json()
        assert drift["status"] == "ok" and drift["report"]["summary"]["n_drifted"] >= 1
        validation = client.get("/dashboard/api/validation").json()
        assert validation["status"] == "ok" and validation["report"]["counts"]["failed"] == 1

        bad = client.get("/dashboard/api/metrics", params={"since": "banana"})
        assert bad.status_code == 400 and "'banana'" in bad.json()["error"]["message"]
        bad = client.get("/dashboard/api/predictions", params={"order": "fastest"})
        assert bad.status_code == 400 and "slowest" in bad.json()["error"]["message"]
        missing = client.get("/dashboard/predictions/no-such-id")
        assert missing.status_code == 404 and "no-such-id" in missing.text


def test_the_dashboard_needs_the_token(deployed: dict[str, Any]) -> None:
    server = deployed["server"]
    with server.client() as client:
        page = client.get("/dashboard")
        assert page.status_code == 401 and 'name="token"' in page.text
        api = client.get("/dashboard/api/metrics")
        assert api.status_code == 401 and "SHIPWAY_ADMIN_TOKEN" in api.json()["error"]["message"]
        wrong = client.post("/dashboard/login", data={"token": "guess", "next": "/dashboard"})
        assert wrong.status_code == 401 and "not the token" in wrong.text
        # A right token sets a session cookie, and sends the browser only back into the dashboard.
        right = client.post("/dashboard/login", data={"token": TOKEN, "next": "https://elsewhere.example/"})
        assert right.status_code == 303 and right.headers["location"] == "/dashboard"
        cookie = right.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and TOKEN not in cookie
        assert client.get("/dashboard").status_code == 200  # the client kept the cookie
        # Assets hold no data: served to anyone, cached, revalidated by ETag.
        plotly = httpx.get(server.url + "/dashboard/plotly.js", timeout=30)
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000 and b"Plotly" in plotly.content[:5000]
        assert "max-age" in plotly.headers["cache-control"]
        again = httpx.get(server.url + "/dashboard/plotly.js", headers={"if-none-match": plotly.headers["etag"]})
        assert again.status_code == 304


def test_the_report_is_one_self_contained_file(deployed: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    out = deployed["tmp"] / "report.html"
    command = ["monitor", "report", str(deployed["project"]), "--since", "1h", "--out", str(out)]
    run = subprocess.run(
        [*SHIPWAY, *command, "--store", deployed["store_url"]],
        capture_output=True,
        text=True,
        cwd=deployed["tmp"],
    )
    assert run.returncode == 0, run.stderr
    html = out.read_text()
    # No request leaves the file: no external script, stylesheet, image or link in its markup
    # (the inlined plotly.js holds URLs in code for map tiles, which the report never draws;
    # the browser below checks what is actually fetched).
    markup = re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S)
    assert not re.findall(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", markup, flags=re.I)
    assert not re.findall(r"<script[^>]*\bsrc\s*=", markup) and 'rel="stylesheet"' not in markup
    assert EVIL not in html  # escaped wherever the logged input appears
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    browser.get(out.as_uri())
    figures = len(browser.find_elements(By.CSS_SELECTOR, "[data-figure]"))
    _wait(browser, lambda d: figures >= 8 and len(_rendered_plots(d)) == figures, "the report's plots")
    assert not _console_errors(browser)
    assert _fetched(browser) == []  # nothing but the file itself
    with open_store(deployed["store_url"]) as store:
        logged = store.count_predictions(SERVICE)
    assert browser.find_element(By.CSS_SELECTOR, '[data-metric="requests"] b').text == str(logged + 1)
    assert EVIL in browser.find_element(By.ID, "uncertain").text
    _screenshot(browser, "report.png")


def test_shipway_dashboard_serves_a_store_alone(deployed: dict[str, Any]) -> None:
    port = free_port()
    log = deployed["tmp"] / "dashboard.log"
    command = [*SHIPWAY, "dashboard", str(deployed["project"]), "--store", deployed["store_url"], "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "SHIPWAY_ADMIN_TOKEN"}
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(url + "/dashboard", params={"since": "1h"}, timeout=30)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        # No token set: this machine may read it.
        assert page.status_code == 200 and 'data-metric="requests"' in page.text
        assert httpx.get(url + "/", timeout=30, follow_redirects=False).headers["location"] == "/dashboard"
        record = httpx.get(url + "/dashboard/predictions/evil", timeout=30)
        assert record.status_code == 200 and "reads the store alone" in record.text
        assert EVIL not in record.text and "&lt;script&gt;" in record.text
    finally:
        proc.terminate()
        proc.wait(30)


def test_who_may_read_the_dashboard() -> None:
    local = {"client": ("127.0.0.1", 5000), "headers": []}
    remote = {"client": ("203.0.113.9", 5000), "headers": []}
    assert access.check(Request({"type": "http", **local}), token="") == "ok"
    assert (
        access.check(Request({"type": "http", **{"client": ("::ffff:127.0.0.1", 1), "headers": []}}), token="") == "ok"
    )
    assert access.check(Request({"type": "http", **remote}), token="") == "forbidden"
    assert access.check(Request({"type": "http", **{"client": None, "headers": []}}), token="") == "forbidden"
    # With a token, being local is not enough.
    assert access.check(Request({"type": "http", **local}), token="s3cret") == "login"
    bearer = {**remote, "headers": [(b"authorization", b"Bearer s3cret")]}
    assert access.check(Request({"type": "http", **bearer}), token="s3cret") == "ok"
    now = 1_000_000.0
    cookie = access.session_cookie("s3cret", "/dashboard", now=now).decode().split(";")[0]
    with_cookie = {**remote, "headers": [(b"cookie", f"theme=dark; {cookie}".encode())]}
    assert access.check(Request({"type": "http", **with_cookie}), token="s3cret", now=now + 60) == "ok"
    assert (
        access.check(Request({"type": "http", **with_cookie}), token="s3cret", now=now + access.SESSION_S + 1)
        == "login"
    )  # expired
    assert (
        access.check(Request({"type": "http", **with_cookie}), token="rotated", now=now + 60) == "login"
    )  # a new token ends sessions


def test_plot_text_from_the_data_is_escaped() -> None:
    # plotly.js reads <a href>, <b> and entities in labels; a class name must show as typed.
    figure = per_class({"totals": {"per_class": {'<a href="x">y</a>': {"precision": 1, "recall": 1, "support": 2}}}})
    labels = figure["data"][0]["y"]
    assert labels == ['&lt;a href="x"&gt;y&lt;/a&gt; (n=2)']


def test_windows_from_text() -> None:
    now = 1_800_000_000.0
    week = Window.parse("7d", now=now)
    assert (week.since, week.until, week.step_s) == (now - 7 * 86400, now, 3 * 3600)  # 56 buckets
    day = Window.parse("2026-01-01", "2026-01-02T00:00:00+00:00", "1h", now=now)
    assert (day.since, day.until, day.step_s) == (1767225600.0, 1767312000.0, 3600)
    with pytest.raises(ConfigError, match="'banana' is not a time"):
        Window.parse("banana", now=now)
    with pytest.raises(ConfigError, match=r"starts .* at or after it ends"):
        Window.parse("1h", "2h", now=now)
    with pytest.raises(ConfigError, match="over 10,000 buckets"):
        Window.parse("30d", step="1s", now=now)


def test_no_dashboard_takes_it_off_the_service(serve: Any) -> None:
    server = serve(SERVICES / "identity", "--no-dashboard")
    with server.client() as client:
        assert client.get("/dashboard").status_code == 404
        assert client.get("/dashboard/api/metrics").status_code == 404
