"""Where a run comes from: its code (commit, dirty flag, diff, untracked files) and environment.

A run from uncommitted code records the full `git diff HEAD` and the SHA-256 of every
untracked file under the project folder, so that it never looks clean when it was not,
and `shipway reproduce` can rebuild the code it ran.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from shipway.store.objects import hash_file

__all__ = ["code_state", "environment", "git"]


def git(root: Path, *args: str, check: bool = True) -> str:
    """Run git in `root` and return its output; '' when git or the repository is missing."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=check, encoding="utf-8", errors="replace"
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout


def code_state(project: Path) -> dict[str, Any]:
    """The code a run in `project` runs: commit, dirty flag, full diff, untracked files' hashes.

    Paths are relative to the repository's top folder; `project` is the project folder
    relative to it. Outside a git repository the commit is None and the flag says so.
    """
    project = Path(project).resolve()
    top = git(project, "rev-parse", "--show-toplevel").strip()
    if not top:
        return {"commit": None, "dirty": None, "diff": "", "untracked": {}, "note": "not in a git repository"}
    root = Path(top)
    commit = git(root, "rev-parse", "HEAD").strip() or None
    # --binary, so that `git apply` can rebuild changed binary files too.
    diff = git(root, "diff", "HEAD", "--binary") if commit else ""
    listed = git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", str(project))
    untracked = {
        name: hash_file(root / name) for name in sorted(filter(None, listed.split("\0"))) if (root / name).is_file()
    }
    return {
        "commit": commit,
        "dirty": bool(diff) or bool(untracked),
        "diff": diff,
        "untracked": untracked,
        "branch": git(root, "rev-parse", "--abbrev-ref", "HEAD").strip() or None,
        "project": str(project.relative_to(root)) if project.is_relative_to(root) else str(project),
    }


def environment() -> dict[str, Any]:
    """Python, the platform and every installed package's version."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": dict(_packages()),
    }


@functools.cache
def _packages() -> tuple[tuple[str, str], ...]:
    # Read once per process: a notebook starting many runs pays for it once.
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower().replace("_", "-"), dist.version)
    return tuple(sorted(found.items()))
