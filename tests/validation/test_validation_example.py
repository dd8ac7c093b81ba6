"""The banking77 example's suites: written fresh, passing, and with one documented failure."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from shipway.validation import Invariance, Report, load_suites, validate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "banking77"


def import_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"validation_example_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def project(banking77: Path) -> Path:
    """The example with a trained model (conftest)."""
    return banking77


@pytest.fixture(scope="module")
def report(project: Path) -> Report:
    return validate([EXAMPLE / "validation"], target_dir=project)


def squash(text: str) -> str:
    return " ".join(text.lower().split())


def test_suites_are_written_from_scratch() -> None:
    suites = load_suites([EXAMPLE / "validation"])
    cases = [case for suite in suites for case in suite.cases]
    assert len(cases) >= 30
    assert sum(isinstance(case.behaviour, Invariance) for case in cases) >= 3
    assert [case.name for case in cases if case.expect_failure] == ["long message whose request comes last"]
    data = {
        squash(row["text"])
        for split in ("train.csv", "test.csv")
        for row in csv.DictReader((EXAMPLE / "data" / split).open(encoding="utf-8"))
    }
    copied = [item["text"] for case in cases for item in case.inputs if squash(item["text"]) in data]
    assert not copied, f"messages copied from data/: {copied}"


def test_example_suites_pass_with_the_known_failure_diagnosed(report: Report) -> None:
    assert report.ok, "\n".join(f"{r.id}: {r.problem}" for r in report.failures)
    assert report.counts["xfail"] == 1 and report.counts["xpass"] == 0
    [known] = [r for r in report.results if r.status == "xfail"]
    assert known.diagnosis is not None
    assert (known.diagnosis.cause, known.diagnosis.stage) == ("before-stage", "truncate")
    assert known.diagnosis.summary.startswith("the input was changed by stage 'truncate' before the model")
    assert known.diagnosis.without is not None and "card_arrival" in known.diagnosis.without["seen"]


def test_truncate_keeps_the_first_characters() -> None:
    service = import_example("service")
    short = service.Message(text="where is my card")
    assert service.truncate(short) is short
    long = service.Message(text="x" * (service.MAX_CHARS + 50))
    assert service.truncate(long).text == "x" * service.MAX_CHARS
    assert service.before == [service.normalise, service.truncate]
