"""The pytest plugin: suite files collected as tests, one per case, run in a real pytest process."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SERVICES

from tests.validation.test_validation_runner import LONG

PLUGIN = "shipway.validation.pytest_plugin"

SUITE = f"""\
input_field: text
cases:
  - name: card
    input: my card has not arrived
    expect: {{label: card_arrival}}
  - name: pin
    input: my pin is blocked
    expect: {{label: pin_blocked}}
  - name: long message
    input: "{LONG}"
    expect: {{label: card_arrival}}
  - name: known long message
    input: "{LONG}"
    expect: {{label: card_arrival}}
    expect_failure: truncate keeps 60 characters
  - name: known and fixed
    input: my pin is blocked
    expect: {{label: pin_blocked}}
    expect_failure: true
"""


def installed() -> bool:
    """Whether the package's pytest11 entry point already loads the plugin in every pytest."""
    return any(ep.value == PLUGIN for ep in importlib.metadata.entry_points(group="pytest11"))


def pytest_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    plugin = [] if installed() else ["-p", PLUGIN]
    cmd = [sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", "-q", "-rA", *args]
    return subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = Path(shutil.copytree(SERVICES / "validated", tmp_path / "project"))
    (folder / "validation").mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")  # keep the outer project's settings out
    return folder


def test_cases_are_tests(project: Path) -> None:
    (project / "validation" / "intents.yaml").write_text(SUITE)
    (project / "validation" / "rules.yaml").write_text("rules: []\n")  # not a suite: not collected
    (project / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    done = pytest_run(project)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "1 failed, 3 passed, 1 xfailed, 1 xpassed" in out
    assert "PASSED validation/intents.yaml::card" in out
    assert "FAILED validation/intents.yaml::long message" in out
    assert "XFAIL validation/intents.yaml::known long message - truncate keeps 60 characters" in out
    # The failure text is the diagnosis.
    assert "cause: the input was changed by stage 'truncate' before the model" in out
    assert "_ intents::long message _" in out and "validation/intents.yaml:9)" in out  # which case, where


def test_one_case_by_node_id(project: Path) -> None:
    (project / "validation" / "intents.yaml").write_text(SUITE)
    done = pytest_run(project, "validation/intents.yaml::pin")
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout


def test_suite_named_files_anywhere(project: Path) -> None:
    (project / "suite_smoke.yaml").write_text(SUITE.split("  - name: long message")[0])
    (project / "more.suite.yml").write_text(SUITE.split("  - name: long message")[0])
    done = pytest_run(project)
    assert done.returncode == 0 and "4 passed" in done.stdout, done.stdout


def test_a_bad_suite_is_a_collection_error_with_its_line(project: Path) -> None:
    (project / "validation" / "bad.yaml").write_text("cases:\n  - input: x\n    expect: {lable: a}\n")
    done = pytest_run(project)
    assert done.returncode == 2
    assert "bad.yaml:3: unknown expectation 'lable'" in done.stdout, done.stdout


def test_against_a_live_service(project: Path, serve: object) -> None:
    server = serve(SERVICES / "validated", "--no-log")  # type: ignore[operator]
    (project / "validation" / "intents.yaml").write_text(SUITE)
    done = pytest_run(project, f"--shipway-url={server.url}")
    assert "1 failed, 2 passed, 1 xfailed, 1 xpassed" in done.stdout, done.stdout
    assert "cause: the input was changed by stage 'truncate'" in done.stdout
