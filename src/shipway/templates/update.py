"""Update: bring a newer template's changes into a project (`shipway update`).

copier does the three-way merge: it renders the template at the project's version and at the
newest with the project's answers, and applies the difference to the project, so the scientist's
edits stay. Where both changed the same lines, the file keeps both between conflict markers:

    <<<<<<< before updating
    the project's lines
    =======
    the new template's lines
    >>>>>>> after updating

Then the project's tests run, unless there are conflicts to resolve first.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import InvalidVersion, Version

from shipway.errors import TemplateError
from shipway.templates.scaffold import ANSWERS_FILE, copier_module, read_answers
from shipway.templates.source import cache_repo, git, packaged_source

__all__ = ["CONFLICT_MARKER", "UNDO", "Update", "update_project"]

CONFLICT_MARKER = "<<<<<<< before updating"
# Undoes an update, conflicts included: `git checkout .` alone refuses paths left unmerged.
UNDO = "git checkout HEAD -- . && git clean -fd -- ."


@dataclass
class Update:
    """What `update_project` did."""

    path: Path
    before: str  # template version before
    after: str  # and after
    changed: list[str] = field(default_factory=list)  # files the update changed, added or removed
    conflicts: list[str] = field(default_factory=list)  # files with conflict markers to resolve
    tests: subprocess.CompletedProcess[str] | None = None  # the project's test run, when there was one

    @property
    def updated(self) -> bool:
        return self.before != self.after or bool(self.changed)

    @property
    def ok(self) -> bool:
        return not self.conflicts and (self.tests is None or self.tests.returncode == 0)


def update_project(path: Path, *, run_tests: bool = True) -> Update:
    """Update the project in `path` to the newest template version; see the module docstring."""
    path = Path(path).resolve()
    answers = read_answers(path)
    _check_git(path)
    source = str(answers.get("_src_path") or "")
    before = str(answers.get("_commit") or "")
    if Path(source).expanduser().resolve() == cache_repo().resolve():
        packaged_source()  # the newest packaged version, committed and tagged
        if before and not git(
            "rev-parse", "--verify", "--quiet", f"{before}^{{commit}}", cwd=cache_repo(), check=False
        ):
            raise TemplateError(
                f"the project was made from template version {before}, which this machine's template cache "
                f"({cache_repo()}) has never held: it keeps the versions of the shipway releases used here. "
                f"Run `shipway update` where the project was made, or with the shipway release that made it."
            )
    if before and before == _newest_version(source):
        return Update(path, before, before)  # nothing to do, and no file is rewritten
    kept = _snapshot(path)
    copier = copier_module()
    try:
        copier.run_update(path, defaults=True, overwrite=True, skip_answered=True, conflict="inline", quiet=True)
    except Exception as err:  # copier raises many types; its messages say what to do
        raise TemplateError(f"copier could not update {path}: {type(err).__name__}: {err}") from err
    _restore_times(path, kept)
    after = str(read_answers(path).get("_commit") or "")
    changed = _changed(path)
    update = Update(path, before, after, changed, _conflicts(path, changed))
    if run_tests and not update.conflicts and update.updated:
        update.tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=path,
            capture_output=True,
            text=True,
            check=False,
        )
    return update


def _newest_version(source: str) -> str | None:
    """The newest version tag of the template repository `source` (PEP 440 order, as copier picks it)."""
    repo = Path(source).expanduser()
    if not source or not (repo / ".git").exists():
        return None
    versions = []
    for tag in git("tag", "--list", cwd=repo, check=False, lines=True).splitlines():
        try:
            versions.append((Version(tag.strip()), tag.strip()))
        except InvalidVersion:
            continue
    return max(versions)[1] if versions else None


def _snapshot(path: Path) -> dict[str, tuple[bytes, int, int]]:
    """Each tracked file's digest and times, so that files the update leaves as they were keep their times."""
    kept = {}
    for name in git("ls-files", "-z", cwd=path, lines=True).split("\0"):
        file = path / name
        if name and file.is_file() and not file.is_symlink():
            stat = file.stat()
            kept[name] = (hashlib.sha256(file.read_bytes()).digest(), stat.st_atime_ns, stat.st_mtime_ns)
    return kept


def _restore_times(path: Path, kept: dict[str, tuple[bytes, int, int]]) -> None:
    """copier writes every file it renders; put back the times of those whose bytes did not change, so
    that a Makefile does not rebuild the dataset or retrain for an update that changed nothing they use."""
    for name, (digest, atime, mtime) in kept.items():
        file = path / name
        try:
            if file.is_file() and hashlib.sha256(file.read_bytes()).digest() == digest:
                os.utime(file, ns=(atime, mtime))
        except OSError:
            continue


def _check_git(path: Path) -> None:
    if git("rev-parse", "--is-inside-work-tree", cwd=path, check=False) != "true":
        raise TemplateError(
            f"{path} is not under git. `shipway update` merges the template's changes into your committed "
            f"files; start a repository first: git init && git add -A && git commit -m 'before update'."
        )
    dirty = git("status", "--porcelain", "--", ".", cwd=path, lines=True)
    if dirty:
        files = ", ".join(line[3:] for line in dirty.splitlines()[:10])
        raise TemplateError(
            f"{path} has uncommitted changes ({files}). Commit or stash them first, so that the update's "
            f"changes can be reviewed (git diff) and undone ({UNDO}) on their own."
        )


def _changed(path: Path) -> list[str]:
    lines = git("status", "--porcelain", "--untracked-files=all", "--", ".", cwd=path, lines=True).splitlines()
    prefix = git("rev-parse", "--show-prefix", cwd=path)
    files = sorted({line[3:].split(" -> ")[-1].strip('"') for line in lines})
    return [f[len(prefix) :] if prefix and f.startswith(prefix) else f for f in files if not f.endswith(ANSWERS_FILE)]


def _conflicts(path: Path, changed: list[str]) -> list[str]:
    found = []
    for name in changed:
        file = path / name
        if name.endswith(".rej"):
            found.append(name)
        elif file.is_file():
            try:
                text = file.read_text(errors="replace")
            except OSError:
                continue
            if any(line.rstrip() == CONFLICT_MARKER for line in text.splitlines()):
                found.append(name)
    return found
