"""`shipway validate` and `shipway explain`, through click's runner."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SERVICES
from test_validation_runner import LONG

from shipway.cli.main import main

PASSING = "input_field: text\ncases:\n  - {name: card, input: my card has not arrived, expect: {label: card_arrival}}\n"
FAILING = PASSING + f"  - {{name: long, input: '{LONG}', expect: {{label: card_arrival}}}}\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the validated service with a validation/ folder."""
    folder = Path(shutil.copytree(SERVICES / "validated", tmp_path / "project"))
    (folder / "validation").mkdir()
    return folder


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_passing_suite_exits_0(project: Path) -> None:
    (project / "validation" / "smoke.yaml").write_text(PASSING)
    code, out = run("validate", "--target", str(project))
    assert code == 0, out
    assert "smoke  card  PASS   label is 'card_arrival' (0.79)" in out
    assert "1 passed, 0 failed in" in out


def test_failing_suite_exits_1_and_writes_reports(project: Path, tmp_path: Path) -> None:
    suite = project / "validation" / "smoke.yaml"
    suite.write_text(FAILING)
    junit, report = tmp_path / "ci" / "junit.xml", tmp_path / "report.json"
    code, out = run("validate", str(suite), "--junit", str(junit), "--json", str(report))
    assert code == 1, out
    assert "FAILED smoke::long" in out and "cause: the input was changed by stage 'truncate'" in out
    assert ET.parse(junit).getroot().get("failures") == "1"
    assert json.loads(report.read_text())["counts"]["failed"] == 1


def test_verbose_lists_passing_cases_of_long_suites(project: Path) -> None:
    many = "input_field: text\ncases:\n" + "".join(
        f"  - {{name: c{i}, input: my pin is blocked, expect: {{label: pin_blocked}}}}\n" for i in range(60)
    )
    (project / "validation" / "many.yaml").write_text(many)
    code, out = run("validate", "--target", str(project))
    assert code == 0 and "(60 passing cases not listed; -v lists them)" in out and " c59 " not in out
    code, out = run("validate", "--target", str(project), "-v")
    assert code == 0 and " c59 " in out


def test_bad_suite_exits_2_with_file_and_line(project: Path) -> None:
    suite = project / "validation" / "bad.yaml"
    suite.write_text("cases:\n  - input: x\n    expect: {lable: a}\n")
    code, out = run("validate", str(suite))
    assert code == 2
    assert f"error: {suite}:3: unknown expectation 'lable'" in out


def test_no_suites_found(project: Path) -> None:
    code, out = run("validate", "--target", str(project / "validation"))
    assert code == 2 and "holds none" in out


def test_every_runs_a_bounded_schedule(project: Path, tmp_path: Path) -> None:
    (project / "validation" / "smoke.yaml").write_text(FAILING)
    state = tmp_path / "state.json"
    code, out = run("validate", "--target", str(project), "--every", "10ms", "--max-runs", "3", "--state", str(state))
    assert code == 1
    assert out.count("FAILED smoke::long") == 1  # reported on the run where it started failing only
    assert "run 3: 1 passed, 1 failed" in out and out.count("no change, 1 still failing") == 2
    assert json.loads(state.read_text())["statuses"] == {"smoke::card": "passed", "smoke::long": "failed"}


def test_every_flags_are_checked(project: Path) -> None:
    (project / "validation" / "smoke.yaml").write_text(PASSING)
    code, out = run("validate", "--target", str(project), "--max-runs", "2")
    assert code == 2 and "--max-runs and --state go with --every" in out
    code, out = run("validate", "--target", str(project), "--every", "soon")
    refused = code == 2 and "--every 'soon' is not a duration" in out
    assert refused, out


def test_explain_command(project: Path) -> None:
    code, out = run("explain", str(project), '{"text": "my card has not arrived"}', "--expect", "card_arrival")
    assert code == 0, out
    assert "truncate (before)" in out and "pass  label = card_arrival: label is 'card_arrival' (0.79)" in out
    code, out = run("explain", str(project), json.dumps({"text": LONG}), "--expect", "card_arrival")
    assert code == 1
    assert "FAIL  label = card_arrival" in out
    assert "cause: the input was changed by stage 'truncate' before the model" in out
    code, out = run("explain", str(project), json.dumps({"text": LONG}), "--expect", "card_arrival", "--json")
    data = json.loads(out)
    assert data["expect"]["diagnosis"]["stage"] == "truncate" and data["stages"][0]["stage"] == "input"
    code, out = run("explain", str(project), '{"text": "my pin"}')
    assert code == 0 and "predict (predict)" in out
    code, out = run("explain", str(project), '{"text": "x"}', "--expect", '{"lable": 1}')
    assert code == 2 and "unknown expectation 'lable'" in out


def test_explain_shows_a_whole_ranking_and_what_the_model_put_first() -> None:
    words = [f"article_{n:02d}" for n in range(12)]  # a ranking far longer than a trace row
    item = json.dumps({"text": " ".join(words)})
    expect = json.dumps({"item_in_top_k": {"item": "article_11", "k": 3, "list": "items", "key": "item"}})
    out = CliRunner().invoke(main, ["explain", str(SERVICES / "ranker"), item, "--expect", expect])
    assert out.exit_code == 1, out.output
    answer = out.output.split("\nanswer:\n", 1)[1].split("\n\n", 1)[0]
    assert "items: 12 entries" in answer
    assert all(f'"item":"{w}"' in answer for w in words)  # every entry, none cut
    assert "    12. " in answer
    assert "it put first 'article_00' (1.00), 'article_01' (0.50), 'article_02' (0.33)" in out.output
