"""Running suites in-process: statuses, a diagnosis for each kind of cause, and the reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SERVICES

from shipway.expect.diagnosis import describe_change
from shipway.validation import (
    InProcessTarget,
    Report,
    explain,
    junit_xml,
    load_pipeline,
    load_suite,
    run_suites,
    table,
    validate,
    write_json,
)

SERVICE = SERVICES / "validated"
LONG = "hello there, this is a long message about nothing at all really, but my card has not arrived"

SUITE = f"""\
name: checks
target: {SERVICE}
input_field: text
fields: {{topk: alternatives, key: label}}
cases:
  - name: card
    input: "my card has not arrived"
    expect:
      label: card_arrival
      probability_at_least: 0.7
      item_in_top_k: {{item: doc-card-delivery, k: 1, list: results, key: id}}
      item_absent: {{item: doc-internal-card-faq, list: results, key: id}}
      queue: general
      field: {{path: decision.review, equals: false}}
  - name: cut by truncate
    input: "{LONG}"
    expect: {{label: card_arrival}}
  - name: outranked by refunds
    input: "refund refund refund refund, my pin"
    expect: {{label: pin_blocked}}
  - name: hidden by an after-stage
    input: "my card has not arrived"
    expect:
      item_in_top_k: {{item: doc-internal-card-faq, k: 1, list: results, key: id}}
  - name: overridden by a rule
    input: "URGENT my card has not arrived"
    expect: {{label: card_arrival}}
  - name: routed by a rule
    input: "URGENT my card has not arrived"
    expect: {{queue: general}}
  - name: predict raises
    input: {{text: "x", raise_in_predict: true}}
    expect: {{label: card_arrival}}
  - name: not a valid input
    input: {{words: "no text field"}}
    expect: {{label: card_arrival}}
  - name: rewordings keep the label
    input: "my pin is blocked"
    invariance: ["My PIN is blocked!", "  my   pin is blocked "]
  - name: a long rewording loses it
    input: "my card has not arrived"
    invariance: ["{LONG}"]
  - name: saying more raises it
    input: "my pin"
    direction: {{variants: ["my pin is blocked"], raises: probability}}
  - name: saying less does not
    input: "my pin is blocked"
    direction: {{variants: ["my pin"], raises: probability}}
  - name: known problem
    input: "{LONG}"
    expect: {{label: card_arrival}}
    expect_failure: truncate cuts long messages
  - name: known problem, fixed
    input: "my card has not arrived"
    expect: {{label: card_arrival}}
    expect_failure: true
"""


@pytest.fixture(scope="module")
def target() -> InProcessTarget:
    return InProcessTarget(load_pipeline(SERVICE))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, target: InProcessTarget) -> Report:
    path = tmp_path_factory.mktemp("suites") / "checks.yaml"
    path.write_text(SUITE)
    return run_suites([load_suite(path)], target)


def result(report: Report, name: str) -> Any:
    return next(r for r in report.results if r.case == name)


def test_statuses(report: Report) -> None:
    statuses = {r.case: r.status for r in report.results}
    assert statuses == {
        "card": "passed",
        "cut by truncate": "failed",
        "outranked by refunds": "failed",
        "hidden by an after-stage": "failed",
        "overridden by a rule": "failed",
        "routed by a rule": "failed",
        "predict raises": "error",
        "not a valid input": "error",
        "rewordings keep the label": "passed",
        "a long rewording loses it": "failed",
        "saying more raises it": "passed",
        "saying less does not": "failed",
        "known problem": "xfail",
        "known problem, fixed": "xpass",
    }
    assert report.counts == {"passed": 3, "failed": 7, "error": 2, "xfail": 1, "xpass": 1}
    assert not report.ok
    assert report.ids["service"] == "validated"
    assert report.targets[0]["target"] == "in-process validated"
    assert all(r.diagnosis is None for r in report.results if r.status in ("passed", "xpass"))


def test_diagnosis_before_stage(report: Report) -> None:
    d = result(report, "cut by truncate").diagnosis
    assert (d.cause, d.stage) == ("before-stage", "truncate")
    assert d.summary.startswith("the input was changed by stage 'truncate' before the model (text cut from 92 to 60")
    assert "dropping 'lly, but my card has not arrived'" in d.summary
    assert d.without == {"stage": "truncate", "kind": "before", "seen": "label is 'card_arrival' (0.79)"}
    assert (
        "with it, the model ranked 'card_arrival' at position 2 of its top 5 (0.11); it chose 'other' (0.56)"
        in d.details
    )
    assert [r["stage"] for r in d.around] == ["normalise", "truncate", "predict"]
    assert d.ids["service"] == "validated"
    # The expected failure is diagnosed the same way.
    assert result(report, "known problem").diagnosis.stage == "truncate"


def test_diagnosis_model_ranking(report: Report) -> None:
    d = result(report, "outranked by refunds").diagnosis
    assert (d.cause, d.stage) == ("model", "predict")
    assert d.summary == "the model ranked 'pin_blocked' at position 2 of its top 5 (0.19); it chose 'refund' (0.69)"
    assert d.without is None


def test_diagnosis_after_stage(report: Report) -> None:
    d = result(report, "hidden by an after-stage").diagnosis
    assert (d.cause, d.stage) == ("after-stage", "hide_internal")
    assert d.summary == (
        "stage 'hide_internal' after the model changed the position of 'doc-internal-card-faq' from 1 to not ranked"
    )
    assert d.details[0].startswith("the model's own output passed: 'doc-internal-card-faq' is at position 1 of 2")
    assert d.without is not None and d.without["stage"] == "hide_internal"


def test_diagnosis_rule_override(report: Report) -> None:
    d = result(report, "overridden by a rule").diagnosis
    assert (d.cause, d.stage) == ("rules", "route")
    assert d.summary == "rule 'urgent-words' overrode the label: 'card_arrival' -> 'escalation'"
    routed = result(report, "routed by a rule").diagnosis
    assert routed.summary == "rule 'urgent-words' set decision.queue to 'urgent'"


def test_diagnosis_errors(report: Report) -> None:
    raised = result(report, "predict raises")
    assert raised.checks[0].message.startswith(
        "the service failed on the case input: stage 'predict' raised RuntimeError"
    )
    assert (raised.diagnosis.cause, raised.diagnosis.stage) == ("stage-error", "predict")
    assert "predict exploded on purpose" in raised.diagnosis.summary
    invalid = result(report, "not a valid input").diagnosis
    assert (invalid.cause, invalid.stage) == ("input", "input")
    assert "does not match the service's input schema" in invalid.summary


def test_diagnosis_behaviour(report: Report) -> None:
    lost = result(report, "a long rewording loses it")
    assert "variant 1" in lost.problem and "is labelled 'other'" in lost.problem
    assert (lost.diagnosis.cause, lost.diagnosis.stage) == ("before-stage", "truncate")
    assert any("changed variant 1 before the model" in d for d in lost.diagnosis.details)
    down = result(report, "saying less does not")
    assert "changed the probability of 'pin_blocked' from 0.795 to 0.579" in down.problem
    assert (down.diagnosis.cause, down.diagnosis.stage) == ("model", "predict")


def test_max_diagnoses(tmp_path: Path, target: InProcessTarget) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    report = run_suites([load_suite(path)], target, max_diagnoses=1)
    diagnoses = [r.diagnosis for r in report.results if r.diagnosis is not None]
    assert diagnoses[0].cause == "before-stage"
    assert all(d.summary.startswith("not diagnosed: more than 1") for d in diagnoses[1:])
    assert run_suites([load_suite(path)], target, diagnose=False).failures[0].diagnosis is None


def test_explain_one_input(target: InProcessTarget) -> None:
    passed = explain(target.pipeline, {"text": "my card has not arrived"}, "card_arrival")
    assert passed == {
        "passed": True,
        "checks": [
            {"expectation": "label = card_arrival", "passed": True, "message": "label is 'card_arrival' (0.79)"}
        ],
        "diagnosis": None,
    }
    failed = explain(target.pipeline, {"text": LONG}, '{"label_in_top_k": {"label": "card_arrival", "k": 1}}')
    assert not failed["passed"] and failed["diagnosis"]["stage"] == "truncate"


def test_junit_xml_parses_back(report: Report) -> None:
    root = ET.fromstring(junit_xml(report))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("14", "7", "2", "1")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "checks" and suite.get("tests") == "14"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["service"] == "validated" and properties["model_version"] == "unversioned"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert len(cases) == 14
    failure = cases["cut by truncate"].find("failure")
    assert failure is not None and failure.get("type") == "expectation"
    assert failure.get("message", "").startswith("label = card_arrival: label is 'other'")
    assert "cause: the input was changed by stage 'truncate'" in (failure.text or "")
    assert cases["cut by truncate"].get("line") == "15"
    assert cases["predict raises"].find("error") is not None
    skipped = cases["known problem"].find("skipped")
    assert skipped is not None and skipped.get("message") == "expected failure: truncate cuts long messages"
    assert cases["card"].find("failure") is None and cases["card"].find("skipped") is None
    assert cases["known problem, fixed"].find("failure") is None


def test_json_report(report: Report, tmp_path: Path) -> None:
    write_json(report, tmp_path / "out" / "report.json")
    data = orjson.loads((tmp_path / "out" / "report.json").read_bytes())
    assert data["ok"] is False
    assert data["counts"]["failed"] == 7
    by_case = {r["case"]: r for r in data["results"]}
    cut = by_case["cut by truncate"]
    assert cut["status"] == "failed" and cut["line"] == 15 and cut["id"] == "checks::cut by truncate"
    assert cut["diagnosis"]["stage"] == "truncate"
    assert cut["outputs"][0]["label"] == "other"
    assert by_case["predict raises"]["outputs"][0]["failed"].startswith("stage 'predict' raised")


def test_table(report: Report) -> None:
    text = table(report)
    assert "checks  card " in text
    assert "FAIL   label = card_arrival: label is 'other'" in text
    assert "FAILED checks::cut by truncate  (" in text
    assert "cause: the input was changed by stage 'truncate'" in text
    assert "EXPECTED FAILURE checks::known problem" in text
    assert "XPASS  passed, though marked expect_failure" in text
    assert text.splitlines()[-1].startswith("3 passed, 7 failed, 2 errors, 1 expected failure, 1 unexpected pass in ")


def test_validate_finds_each_suites_project(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE)
    report = validate([path])
    assert report.counts["failed"] == 7
    assert report.merge(report).counts["failed"] == 14


def test_describe_change() -> None:
    assert describe_change({"text": "abcdef"}, {"text": "abc"}) == "text cut from 6 to 3 characters, dropping 'def'"
    assert describe_change({"a": 1, "b": 2}, {"a": 1, "c": 3}) == "b removed (was 2); c added: 3"
    assert describe_change("x", "y") == "the value 'x' -> 'y'"
