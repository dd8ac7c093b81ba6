"""The suites as a gate: a candidate model or rule set replaces the live one only if they pass."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from shipway.core.gate import Gate, GateResult
from shipway.core.pipeline import Pipeline
from shipway.validation.results import Report
from shipway.validation.runner import run_suites
from shipway.validation.suite import Suite, load_suites
from shipway.validation.targets import InProcessTarget

__all__ = ["suite_gate"]


def suite_gate(paths: Sequence[str | Path]) -> Gate | None:
    """A gate that runs these suites in-process against the candidate; None if there are none."""
    existing = [p for p in paths if Path(p).exists()]
    suites: list[Suite] = load_suites(existing) if existing else []
    if not suites:
        return None

    def gate(candidate: Pipeline) -> GateResult:
        report = run_suites(suites, InProcessTarget(candidate, "candidate"), max_diagnoses=20)
        if report.ok:
            return GateResult(True, _passed(report), report.to_dict())
        failures = report.failures
        lines = [
            f"{f.suite}::{f.case}: {f.diagnosis.summary if f.diagnosis else f.problem or 'failed'}"
            for f in failures[:10]
        ]
        more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
        summary = f"{len(failures)} of {len(report.results)} validation cases failed{more}: " + "; ".join(lines)
        return GateResult(False, summary, report.to_dict())

    return gate


def _passed(report: Report) -> str:
    """What a passing gate ran: the cases per suite, and any expected failures among them."""
    per_suite = Counter(r.suite for r in report.results)
    suites = ", ".join(f"{suite} {n}" for suite, n in per_suite.items())
    counts = report.counts
    extra = f"; {counts['xfail']} expected to fail did" if counts["xfail"] else ""
    plural = "s" if len(per_suite) != 1 else ""
    return f"{len(report.results)} cases of {len(per_suite)} suite{plural} passed ({suites}){extra} in {report.seconds:.1f}s"
