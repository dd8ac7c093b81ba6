"""The checker's report: one finding per check, and how it prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Finding", "Report"]


@dataclass
class Finding:
    check: str
    status: str  # "ok", "fail", "warn" or "skip"
    message: str


@dataclass
class Report:
    target: Path
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    def add(self, check: str, status: str, message: str) -> None:
        self.findings.append(Finding(check, status, message))

    def render(self) -> str:
        lines = [f"shipway check {self.target}"]
        for f in self.findings:
            mark = {"ok": "ok", "fail": "FAIL", "warn": "warn", "skip": "skip"}[f.status]
            first, *rest = f.message.splitlines() or [""]
            lines.append(f"  {mark:<5} {f.check:<12} {first}")
            lines += [f"  {'':<5} {'':<12} {line}" for line in rest]
        failed, warned = len(self.problems), sum(f.status == "warn" for f in self.findings)
        if failed:
            lines.append(f"{failed} problem{'s' if failed > 1 else ''} to fix before deploying.")
        else:
            lines.append("no problems" + (f" ({warned} warning{'s' if warned > 1 else ''})." if warned else "."))
        return "\n".join(lines)
