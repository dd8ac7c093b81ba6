"""The gate policy: one place where a gate's result becomes GateFailed, with the suites' report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shipway.errors import GateFailed
from shipway.project import Project
from shipway.rules.live import LiveRules
from shipway.validation.gate import suite_gate

ROUTER = Path(__file__).resolve().parent.parent / "services" / "router"

SUITE = """name: routing
cases:
  - name: cards are urgent
    input: {text: "card_arrival 0.9"}
    expect: {queue: urgent}
  - name: the rest is general
    input: {text: "age_limit 0.9"}
    expect: {queue: general}
"""
EVERYTHING_URGENT = """version: routing-2
default: {queue: general}
rules:
  - name: everything-urgent
    then: {queue: urgent}
"""


def _gated(tmp_path: Path) -> Project:
    folder = Path(shutil.copytree(ROUTER, tmp_path / "router"))
    (folder / "validation").mkdir()
    (folder / "validation" / "routing.yaml").write_text(SUITE)
    return Project.load(
        folder, {"store.url": f"sqlite:///{tmp_path / 'store.db'}"}, gate=suite_gate([folder / "validation"])
    )


def test_refused_rules_raise_gate_failed_with_the_report(tmp_path: Path) -> None:
    project = _gated(tmp_path)
    manager = project.rules_manager()
    pipeline = project.build(LiveRules())
    with pytest.raises(GateFailed, match="rules routing-2 refused by the validation gate: 1 of 2") as caught:
        project.check_rules(pipeline, manager.compile(EVERYTHING_URGENT))
    failed = [r["case"] for r in caught.value.report["results"] if r["status"] == "failed"]
    assert failed == ["the rest is general"]
    # The rules file passes: nothing is raised.
    project.check_rules(pipeline, manager.compile((ROUTER / "rules.yaml").read_text()))


def test_the_rules_lifecycle_refuses_through_the_same_policy_and_records_nothing(tmp_path: Path) -> None:
    project = _gated(tmp_path)
    manager = project.rules_manager()
    pipeline = project.build(manager.live)
    manager.gate = lambda ruleset: project.check_rules(pipeline, ruleset)
    with pytest.raises(GateFailed):
        manager.apply(EVERYTHING_URGENT)
    assert manager.history() == []
    project.close()


def test_gate_failed_is_raised_by_the_gate_policy_alone() -> None:
    # Serving's rule and model swaps, the parity gate and the commands all refuse through
    # shipway.project.enforce: a second place that turns a gate's result into GateFailed would
    # be a second policy (the issue found four, one of which dropped the report).
    src = Path(__file__).resolve().parents[2] / "src" / "shipway"
    raising = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if "raise GateFailed(" in path.read_text(encoding="utf-8")
    )
    assert raising == ["project/_project.py"]
