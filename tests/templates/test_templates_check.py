"""`shipway check`: services broken on purpose (tests/services/check_*) fail the right check
with the right message; generated projects pass (test_templates_projects.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from shipway.cli.main import main as cli
from shipway.validation.service_check import Report, check_project

SERVICES = Path(__file__).resolve().parents[1] / "services"


def statuses(report: Report) -> dict[str, str]:
    return {f.check: f.status for f in report.findings}


def failure(report: Report, check: str) -> str:
    messages = [f.message for f in report.findings if f.check == check and f.status == "fail"]
    assert messages, f"{check} did not fail:\n{report.render()}"
    return messages[0]


@pytest.mark.parametrize(
    ("service", "check", "says"),
    [
        (
            "check_schema_mismatch",
            "schemas",
            "on `example`, predict returned a value that does not match the output schema Prediction: "
            "field probability: Input should be less than or equal to 1",
        ),
        (
            "check_batch_disagrees",
            "batch",
            "predict_batch disagrees with predict on `example` (batch of 2, given order): "
            "score is 0.7142857142857143 against 0.71",
        ),
        (
            "check_columns_disagrees",
            "columns",
            "predict_columns disagrees with predict on `example`: score is 0.7142857142857143 against 0.71",
        ),
        ("check_nondeterministic", "determinism", "two runs of `example` gave different answers: score is"),
        ("check_not_json", "json", "the output for `example` does not serialise to JSON"),
        ("check_nan", "json", "NaN and infinity become null in JSON"),
        ("check_load_fails", "load", "load() raised RuntimeError: no GPU found; this model needs CUDA"),
        ("check_artifacts_missing", "load", "load() failed: artifacts missing: "),
        (
            "check_artifacts_incomplete",
            "artifacts",
            "artifacts missing: manifest.json lists vocabulary.txt, which is not in",
        ),
        ("check_bad_example", "example", "`example` does not match the input schema"),
        ("check_bad_default", "default", "`default` does not match the output schema Prediction"),
    ],
)
def test_a_broken_service_fails_the_check_that_finds_it(service: str, check: str, says: str) -> None:
    report = check_project(SERVICES / service)
    assert not report.ok
    assert says in failure(report, check)
    # One cause, one failure: the other checks pass, are skipped, or did not run.
    others = [f.check for f in report.problems if f.check != check]
    assert others in ([], ["artifacts"]), report.render()


def test_missing_artifacts_are_named_with_the_folder_and_the_fix() -> None:
    report = check_project(SERVICES / "check_artifacts_missing")
    message = failure(report, "artifacts")
    assert f"artifacts missing: {SERVICES / 'check_artifacts_missing' / 'artifacts'} does not exist" in message
    assert "python train.py" in message
    assert "model.json does not exist" in failure(report, "load")


def test_changed_artifacts_are_caught_by_their_hash(tmp_path: Path) -> None:
    project = Path(shutil.copytree(SERVICES / "check_artifacts_incomplete", tmp_path / "svc"))
    (project / "artifacts" / "vocabulary.txt").write_text("hello\n")
    assert check_project(project).ok
    (project / "artifacts" / "model.json").write_text('{"hello": 2.0}')
    report = check_project(project)
    assert "artifacts changed: model.json in" in failure(report, "artifacts")
    assert statuses(report)["load"] == "skip"  # nothing in a folder that fails its manifest is loaded


def test_declared_non_determinism_passes() -> None:
    report = check_project(SERVICES / "check_declared_random")
    assert report.ok, report.render()
    assert statuses(report)["determinism"] == "skip"


def test_a_good_service_passes_every_check() -> None:
    report = check_project(SERVICES / "identity")
    assert report.ok, report.render()
    assert statuses(report) == {
        "settings": "ok",
        "service": "ok",
        "schemas": "ok",
        "artifacts": "skip",
        "load": "skip",
        "example": "ok",
        "default": "skip",
        "predict": "ok",
        "json": "ok",
        "batch": "skip",
        "columns": "skip",
        "determinism": "ok",
    }


def test_predict_columns_that_agree_pass_and_malformed_ones_fail_with_the_fix(tmp_path: Path) -> None:
    project = Path(shutil.copytree(SERVICES / "check_columns_disagrees", tmp_path / "svc"))
    service = project / "service.py"
    service.write_text(service.read_text().replace("round(len(m.text) / 7, 2)", "len(m.text) / 7"))
    report = check_project(project)
    assert report.ok and statuses(report)["columns"] == "ok", report.render()
    short = Path(shutil.copytree(project, tmp_path / "short"))  # a new path: service.py is imported once a path
    (short / "service.py").write_text(service.read_text().replace("for m in messages]", "for m in messages][1:]"))
    report = check_project(short)
    assert "returned 1 values in the column 'score' of Score for a batch of 2 inputs" in failure(report, "columns")


def test_the_command_prints_every_check_and_exits_1_on_a_problem() -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["check", str(SERVICES / "check_batch_disagrees")])
    assert bad.exit_code == 1
    assert "  FAIL  batch        predict_batch disagrees with predict" in bad.output
    assert bad.output.rstrip().endswith("1 problem to fix before deploying.")
    good = runner.invoke(cli, ["check", str(SERVICES / "identity")])
    assert good.exit_code == 0, good.output
    assert "  ok    determinism  the same inputs got the same answers twice" in good.output
    assert good.output.rstrip().endswith("no problems.")


def test_a_folder_without_a_service_is_a_problem(tmp_path: Path) -> None:
    report = check_project(tmp_path)
    assert "has no service.py" in failure(report, "service")


def test_a_trained_model_without_a_drift_reference_is_warned_with_the_command(tmp_path: Path) -> None:
    from shipway import write_manifest
    from shipway.monitoring.drift import Profile

    project = Path(shutil.copytree(SERVICES / "check_artifacts_incomplete", tmp_path / "svc"))
    artifacts = project / "artifacts"
    (artifacts / "vocabulary.txt").write_text("hello\n")
    report = check_project(project)
    assert report.ok and statuses(report)["drift"] == "warn", report.render()
    warning = next(f.message for f in report.findings if f.check == "drift")
    assert "no drift reference: artifacts/profile.json is missing" in warning
    assert "`python train.py`" in warning and "docs/drift.md" in warning
    assert report.render().endswith("no problems (1 warning).")

    Profile.build([{"text": t} for t in ("hello", "world", "again")], [0.5, 0.25, 0.0]).save(artifacts)
    write_manifest(artifacts)
    report = check_project(project)
    assert statuses(report)["drift"] == "ok" and "warn" not in report.render(), report.render()


def test_a_validation_case_whose_input_left_the_schema_fails_with_its_place(tmp_path: Path) -> None:
    project = Path(shutil.copytree(SERVICES / "identity", tmp_path / "svc"))
    (project / "validation").mkdir()
    (project / "validation" / "smoke.yaml").write_text(
        "cases:\n"
        "  - name: still text\n"
        "    input: {text: hello}\n"
        "    expect: {field: {path: text, equals: hello}}\n"
        "  - name: written for the old schema\n"
        "    input: {amount: 120.0, channel: web}\n"
        "    expect: {field: {path: text, matches: .}}\n"
    )
    report = check_project(project)
    message = failure(report, "suites")
    assert f"validation case smoke::written for the old schema ({project / 'validation' / 'smoke.yaml'}:5)" in message
    assert "does not match the input schema" in message and "text" in message
    assert "Edit its `input:`" in message
    (project / "validation" / "smoke.yaml").write_text(
        "cases:\n  - name: still text\n    input: {text: hello}\n    expect: {field: {path: text, equals: hello}}\n"
    )
    report = check_project(project)
    assert report.ok and statuses(report)["suites"] == "ok", report.render()
