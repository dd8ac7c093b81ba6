"""`shipway annotate` on a real project folder and its SQLite store: a note recorded with its
actor and time, listed back (text and JSON), and bad input refused with what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shipway.cli.main import main as cli
from shipway.store import open_store


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "shipway.toml").write_text('name = "svc"\n[store]\nurl = "sqlite:///store.db"\n')
    return tmp_path


def test_a_note_is_recorded_and_listed(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    where = ["--project", str(project)]
    monkeypatch.setenv("SHIPWAY_ACTOR", "bo")
    noted = runner.invoke(cli, ["annotate", "retrained on the March data", *where, "--at", "2026-03-02T09:14:00"])
    assert noted.exit_code == 0, noted.output
    assert noted.output.strip() == "noted on svc at 2026-03-02T09:14:00Z by bo: retrained on the March data"
    other = runner.invoke(cli, ["annotate", "campaign starts", *where, "--actor", "ana", "--service", "web", "--json"])
    assert other.exit_code == 0, other.output
    assert json.loads(other.output)["actor"] == "ana" and json.loads(other.output)["service"] == "web"

    listed = runner.invoke(cli, ["annotate", "--list", *where])
    assert listed.exit_code == 0, listed.output
    assert "retrained on the March data" in listed.output and "campaign starts" not in listed.output
    every = runner.invoke(cli, ["annotate", "--list", "--all-services", "--json", *where])
    assert [n["text"] for n in json.loads(every.output)] == ["retrained on the March data", "campaign starts"]
    recent = runner.invoke(cli, ["annotate", "--list", "--all-services", "--since", "1d", "--json", *where])
    assert [n["text"] for n in json.loads(recent.output)] == ["campaign starts"]
    with open_store(f"sqlite:///{project / 'store.db'}") as store:
        assert [(n.service, n.actor) for n in store.annotations()] == [("svc", "bo"), ("web", "ana")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the note's TEXT to record it, or --list"),
        (["a note", "--list"], "not both"),
        (["   "], "the annotation is empty"),
        (["x" * 2001], "over 2000; shorten it"),
        (["a note", "--since", "1d"], "--since and --all-services go with --list"),
    ],
)
def test_bad_input_is_refused_with_the_fix(project: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["annotate", *args, "--project", str(project)])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_time_that_is_not_one_is_a_usage_error(project: Path) -> None:
    result = CliRunner().invoke(cli, ["annotate", "a note", "--at", "yesterday", "--project", str(project)])
    assert result.exit_code == 2 and "--at" in result.output and "is not a time" in result.output
