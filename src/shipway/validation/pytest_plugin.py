"""A pytest plugin: suite files are collected as tests, one item per case.

Collected: `suite_*.yaml`, `*.suite.yaml`, and any `*.yaml` in a folder named
`validation/` whose top level has `cases:` (and the same with .yml). Each suite
runs once, in-process against its project (or against `--shipway-url`), in one
batch; each case then passes or fails with its diagnosis as the failure text.
A case marked `expect_failure` is reported as xfail (or XPASS when it passes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipway.errors import ShipwayError
from shipway.expect.cases import Case
from shipway.validation.rendering import case_text
from shipway.validation.results import CaseResult, Report
from shipway.validation.runner import open_target, run_suites
from shipway.validation.suite import Suite, is_suite_file, load_suite
from shipway.validation.targets import Target

__all__ = [
    "CaseFailed",
    "CaseItem",
    "SuiteFile",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "pytest_unconfigure",
]

_TARGETS = pytest.StashKey[dict[str, Target]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shipway", "shipway validation suites")
    group.addoption(
        "--shipway-url",
        default=None,
        help="Run collected validation suites against this live service instead of in-process.",
    )
    group.addoption(
        "--shipway-target",
        default=None,
        help="Run collected validation suites against this project folder (default: each suite's own).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TARGETS] = {}


def pytest_unconfigure(config: pytest.Config) -> None:
    for target in config.stash.get(_TARGETS, {}).values():
        target.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_suite_file(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class CaseFailed(Exception):
    """Raised by a case item whose case failed; carries the result for the report."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.problem)
        self.result = result


class SuiteFile(pytest.File):
    """One suite file: its cases are the items; the suite runs once, on first use."""

    suite: Suite | None = None
    report: Report | None = None

    def collect(self) -> list[pytest.Item]:
        self.suite = load_suite(self.path)
        items: list[pytest.Item] = []
        for case in self.suite.cases:
            item = CaseItem.from_parent(self, name=case.name, case=case)
            if case.expect_failure:
                item.add_marker(pytest.mark.xfail(reason=case.reason or "expect_failure", raises=CaseFailed))
            items.append(item)
        return items

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ShipwayError):
            return str(excinfo.value)  # a suite error already says file:line and how to fix it
        return super().repr_failure(excinfo)

    def result(self, case: Case) -> CaseResult:
        if self.report is None:
            assert self.suite is not None
            self.report = run_suites([self.suite], self._target())
        return next(r for r in self.report.results if r.case == case.name)

    def _target(self) -> Target:
        assert self.suite is not None
        config = self.config
        url = config.getoption("--shipway-url")
        folder: str | Path | None = config.getoption("--shipway-target") or self.suite.target
        if not url and folder is None:
            raise ShipwayError(
                f"{self.path}: no project found above this suite (no service.py or shipway.toml); "
                f"set `target:` in the suite, or pass --shipway-target DIR or --shipway-url URL."
            )
        key = url or str(Path(folder or ".").resolve())
        targets = config.stash[_TARGETS]
        if key not in targets:
            targets[key] = open_target(folder, url)
        return targets[key]


class CaseItem(pytest.Item):
    """One case of a suite."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        assert isinstance(self.parent, SuiteFile)
        result = self.parent.result(self.case)
        if result.status in ("failed", "error", "xfail"):
            raise CaseFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return "\n".join(case_text(excinfo.value.result))
        if isinstance(excinfo.value, ShipwayError):
            return f"error: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.case.line - 1) if self.case.line else None, f"{self.case.suite}::{self.case.name}"
