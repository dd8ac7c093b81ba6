"""Two runs side by side: metrics, parameters, code, data, seeds and environment.

`shipway runs compare A B` prints it; `shipway reproduce` uses it to list every difference
of code, data or environment that could explain a mismatch.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipway.experiments.provenance import git
from shipway.store.runs import RunRecord

__all__ = ["RunComparison", "compare_runs", "differences"]

Pair = tuple[Any, Any]


@dataclass
class RunComparison:
    """What differs between runs `a` and `b` (each entry: the value in a, the value in b)."""

    a: str
    b: str
    metrics: dict[str, Pair] = field(default_factory=dict)  # every metric of either run
    params: dict[str, Pair] = field(default_factory=dict)  # only those that differ
    code: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Pair] = field(default_factory=dict)
    seeds: dict[str, Pair] = field(default_factory=dict)
    environment: dict[str, Pair] = field(default_factory=dict)
    packages: dict[str, Pair] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def pairs(d: dict[str, Pair]) -> dict[str, list[Any]]:
            return {k: list(v) for k, v in d.items()}

        return {
            "a": self.a,
            "b": self.b,
            "metrics": pairs(self.metrics),
            "params": pairs(self.params),
            "code": self.code,
            "data": pairs(self.data),
            "seeds": pairs(self.seeds),
            "environment": pairs(self.environment),
            "packages": pairs(self.packages),
        }


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Pair]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def compare_runs(a: RunRecord, b: RunRecord, repo: Path | None = None) -> RunComparison:
    """Compare two whole runs (from `Store.get_run`). With `repo`, the code difference between
    two commits is read from git there."""
    out = RunComparison(a.id, b.id)
    out.metrics = {k: (a.metrics.get(k), b.metrics.get(k)) for k in sorted(set(a.metrics) | set(b.metrics))}
    out.params = _changed(a.params, b.params)
    out.seeds = _changed(a.seeds, b.seeds)
    out.data = _changed(
        {"dataset_version": a.dataset_version, "task": a.task},
        {"dataset_version": b.dataset_version, "task": b.task},
    )
    env_a = {k: v for k, v in a.environment.items() if k != "packages"}
    env_b = {k: v for k, v in b.environment.items() if k != "packages"}
    out.environment = _changed(env_a, env_b)
    out.packages = _changed(a.environment.get("packages", {}), b.environment.get("packages", {}))
    out.code = code_difference(a, b, repo)
    return out


def code_difference(a: RunRecord, b: RunRecord, repo: Path | None) -> dict[str, Any]:
    """Commits, the difference of their uncommitted diffs, untracked files that differ, and
    (with `repo`) the files changed between the two commits."""
    code: dict[str, Any] = {}
    ca, cb = a.code.get("commit"), b.code.get("commit")
    if ca != cb:
        code["commits"] = [ca, cb]
        if repo is not None and ca and cb:
            code["commit_diff_stat"] = git(repo, "diff", "--stat", ca, cb).rstrip()
    da, db = a.code.get("diff", ""), b.code.get("diff", "")
    if da != db:
        lines = difflib.unified_diff(
            da.splitlines(keepends=True),
            db.splitlines(keepends=True),
            f"{a.id[:8]} uncommitted",
            f"{b.id[:8]} uncommitted",
        )
        code["uncommitted_diff"] = "".join(lines)
    untracked = _changed(a.code.get("untracked", {}), b.code.get("untracked", {}))
    if untracked:
        code["untracked"] = {k: list(v) for k, v in untracked.items()}
    if a.dirty != b.dirty:
        code["dirty"] = [a.dirty, b.dirty]
    return code


def differences(comparison: RunComparison) -> list[str]:
    """Every difference of code, data, seeds or environment, one sentence each."""
    out: list[str] = []
    code = comparison.code
    if "commits" in code:
        out.append(f"code: commit {code['commits'][0]} against {code['commits'][1]}")
    if "uncommitted_diff" in code:
        out.append("code: the uncommitted changes differ (see code.uncommitted_diff)")
    for path, (old, new) in code.get("untracked", {}).items():
        out.append(f"code: untracked file {path}: sha256 {_short(old)} against {_short(new)}")
    for key, (old, new) in comparison.data.items():
        out.append(f"data: {key} {old} against {new}")
    for key, (old, new) in comparison.seeds.items():
        out.append(f"seed {key}: {old} against {new}")
    for key, (old, new) in comparison.environment.items():
        if key != "executable":
            out.append(f"environment: {key} {old} against {new}")
    for name, (old, new) in comparison.packages.items():
        out.append(f"package {name}: {old or '(not installed)'} against {new or '(not installed)'}")
    return out


def _short(value: Any) -> str:
    return "(missing)" if value is None else str(value)[:12]
