"""The runner: every case's inputs in batches, the checks, then a diagnosis per failure.

Checking is one batched pass over all inputs (the fast path: `run_batch`
in-process, /predict/batch over HTTP); only failing cases are traced and
diagnosed, so a passing suite costs about one batch prediction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter
from typing import Any

from shipway.errors import SuiteError
from shipway.expect.cases import Failed
from shipway.expect.diagnosis import Diagnosis
from shipway.validation.results import CaseResult, Report
from shipway.validation.suite import Suite, find_suites, load_suites
from shipway.validation.targets import HttpTarget, InProcessTarget, Target, load_pipeline

__all__ = ["open_target", "run_suites", "validate"]


def run_suites(
    suites: Sequence[Suite],
    target: Target,
    *,
    diagnose: bool = True,
    max_diagnoses: int | None = 200,
) -> Report:
    """Run every case of `suites` against `target`; diagnose failing cases (at most `max_diagnoses`).

    Never raises for a failing case: look at `Report.ok`. Raises TargetError when
    the target cannot be reached at all.
    """
    started_at, started = time.time(), perf_counter()
    items: list[Any] = []
    for suite in suites:
        for case in suite.cases:
            items.extend(case.inputs)
    outputs = target.predict(items) if items else []
    share = (perf_counter() - started) / max(1, sum(len(s.cases) for s in suites))
    results: list[CaseResult] = []
    diagnosed = 0
    at = 0
    for suite in suites:
        for case in suite.cases:
            case_outputs = outputs[at : at + len(case.inputs)]
            at += len(case.inputs)
            checks = case.evaluate(case_outputs, suite.fields)
            passed = all(c.passed for c in checks)
            if passed:
                status = "xpass" if case.expect_failure else "passed"
            elif case.expect_failure:
                status = "xfail"
            else:
                status = "error" if any(isinstance(o, Failed) for o in case_outputs) else "failed"
            result = CaseResult(
                suite=suite.name,
                case=case.name,
                status=status,
                checks=checks,
                inputs=case.inputs,
                outputs=case_outputs,
                description=case.describe(),
                reason=case.reason,
                file=case.file,
                line=case.line,
                seconds=share,
            )
            if not passed and diagnose:
                if max_diagnoses is None or diagnosed < max_diagnoses:
                    case_started = perf_counter()
                    result.diagnosis = _diagnose(target, case, suite)
                    result.seconds += perf_counter() - case_started
                    diagnosed += 1
                else:
                    result.diagnosis = Diagnosis(
                        "unknown", None, f"not diagnosed: more than {max_diagnoses} cases failed in this run"
                    )
            results.append(result)
    targets = [{"target": target.description, "ids": target.ids()}]
    return Report(results, targets, started_at, perf_counter() - started)


def _diagnose(target: Target, case: Any, suite: Suite) -> Diagnosis:
    try:
        return target.diagnose(case, suite.fields)
    except Exception as err:  # a diagnosis is an aid: its failure must not lose the run's results
        return Diagnosis("unknown", None, f"the diagnosis itself failed: {type(err).__name__}: {err}")


def open_target(target_dir: str | Path | None = None, url: str | None = None, timeout: float = 30.0) -> Target:
    """A live service when `url` is given, else the project in `target_dir` loaded in-process."""
    if url:
        return HttpTarget(url, timeout=timeout)
    if target_dir is None:
        raise SuiteError("no target: pass --target DIR (a project folder) or --url URL (a live service).")
    return InProcessTarget(load_pipeline(target_dir))


def resolve_suites(paths: Sequence[str | Path], target_dir: str | Path | None = None) -> list[Suite]:
    """Suites from paths; with none given, the target project's validation/ folder."""
    if paths:
        return load_suites(paths)
    project = Path(target_dir or ".")
    found = find_suites(project)
    if not found:
        raise SuiteError(
            f"no suites given and {project.resolve() / 'validation'} holds none; pass suite files, "
            f"or write validation/*.yaml in the project (see docs/validation.md)."
        )
    return load_suites(found)


def validate(
    paths: Sequence[str | Path] = (),
    *,
    target_dir: str | Path | None = None,
    url: str | None = None,
    max_diagnoses: int | None = 200,
    suites: Sequence[Suite] | None = None,
) -> Report:
    """What `shipway validate` does: load the suites, run them against their targets, report.

    With `url`, every suite runs against that live service; with `target_dir`, against
    that project in-process; with neither, each suite against its own project (its
    `target:`, or the nearest folder above it with service.py or shipway.toml).
    """
    suites = list(suites) if suites is not None else resolve_suites(paths, target_dir)
    if url or target_dir is not None:
        groups: dict[str | None, list[Suite]] = {None: suites}
    else:
        groups = {}
        for suite in suites:
            if suite.target is None:
                raise SuiteError(
                    f"suite {suite.name!r} ({suite.path}) has no target: no folder above it holds service.py "
                    f"or shipway.toml. Pass --target DIR or --url URL, or set `target:` in the suite."
                )
            groups.setdefault(str(suite.target), []).append(suite)
    report = Report()
    for folder, group in groups.items():
        target = open_target(folder if folder is not None else target_dir, url)
        try:
            report = report.merge(run_suites(group, target, max_diagnoses=max_diagnoses))
        finally:
            target.close()
    return report
