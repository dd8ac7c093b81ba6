"""Results: each case's outcome, and the report of a whole run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shipway.common.merging import merge_fields
from shipway.expect.cases import Failed
from shipway.expect.diagnosis import Diagnosis
from shipway.expect.expectations import Check

__all__ = ["STATUSES", "CaseResult", "Changes", "Report"]

# passed; failed (an expectation did not hold); error (the service failed on an input);
# xfail (a case marked expect_failure failed, as documented); xpass (it passed: the known problem is gone).
STATUSES = ("passed", "failed", "error", "xfail", "xpass")
FAILING = ("failed", "error")


@dataclass
class CaseResult:
    suite: str
    case: str
    status: str
    checks: list[Check]
    inputs: list[Any]
    outputs: list[Any]
    diagnosis: Diagnosis | None = None
    description: str = ""
    reason: str | None = None  # why the case is expected to fail
    file: str | None = None
    line: int | None = None
    seconds: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.suite}::{self.case}"

    @property
    def failing(self) -> bool:
        return self.status in FAILING

    @property
    def problem(self) -> str:
        """The first failing check, as 'expected: seen', or ''."""
        bad = next((c for c in self.checks if not c.passed), None)
        return f"{bad.expectation}: {bad.message}" if bad else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "suite": self.suite,
            "case": self.case,
            "status": self.status,
            "file": self.file,
            "line": self.line,
            "expects": self.description,
            "reason": self.reason,
            "checks": [c.to_dict() for c in self.checks],
            "inputs": self.inputs,
            "outputs": [{"failed": o.message} if isinstance(o, Failed) else o for o in self.outputs],
            "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None,
            "ms": round(self.seconds * 1000, 3),
        }


@dataclass
class Report:
    """One run of one or more suites against one or more targets."""

    results: list[CaseResult] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)  # {"target": description, "ids": {...}}
    started_at: float = 0.0  # epoch seconds
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        seen = Counter(r.status for r in self.results)
        return {status: seen.get(status, 0) for status in STATUSES}

    @property
    def ok(self) -> bool:
        """True when no case failed (expected failures and unexpected passes do not fail a run)."""
        return not any(r.failing for r in self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if r.failing]

    @property
    def ids(self) -> dict[str, Any]:
        """The ids of the (first) target's model, rules and data."""
        return dict(self.targets[0]["ids"]) if self.targets else {}

    def summary(self) -> str:
        counts = self.counts
        parts = [f"{counts['passed']} passed", f"{counts['failed']} failed"]
        words = {"error": "error", "xfail": "expected failure", "xpass": "unexpected pass"}
        parts += [
            f"{counts[s]} {word}{'es' if word.endswith('s') else 's'}" if counts[s] > 1 else f"1 {word}"
            for s, word in words.items()
            if counts[s]
        ]
        return f"{', '.join(parts)} in {self.seconds:.2f} s"

    def merge(self, other: Report) -> Report:
        """Both runs' results and targets, one after the other, and their seconds added (common/merging.py)."""
        started_at = min(self.started_at, other.started_at) if self.results else other.started_at
        return merge_fields(self, other, started_at=started_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 4),
            "targets": self.targets,
            "results": [r.to_dict() for r in self.results],
        }


@dataclass
class Changes:
    """What changed since the last run: cases that started or stopped failing."""

    newly_failing: list[CaseResult] = field(default_factory=list)
    newly_passing: list[CaseResult] = field(default_factory=list)
    still_failing: int = 0

    def __bool__(self) -> bool:
        return bool(self.newly_failing or self.newly_passing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "newly_failing": [r.id for r in self.newly_failing],
            "newly_passing": [r.id for r in self.newly_passing],
            "still_failing": self.still_failing,
        }
