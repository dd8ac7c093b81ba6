"""The suites as a gate: a candidate model or rule set replaces the live one only if they pass."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shipway.core.gate import Gate, GateResult
from shipway.core.pipeline import Pipeline
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
            return GateResult(True, f"{len(report.results)} cases passed", report.to_dict())
        failures = report.failures
        lines = [
            f"{f.suite}::{f.case}: {f.diagnosis.summary if f.diagnosis else f.problem or 'failed'}"
            for f in failures[:10]
        ]
        more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
        summary = f"{len(failures)} of {len(report.results)} validation cases failed{more}: " + "; ".join(lines)
        return GateResult(False, summary, report.to_dict())

    return gate
