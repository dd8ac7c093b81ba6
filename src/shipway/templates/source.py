"""The template source: shipway's packaged template, made a versioned git repository.

copier's update renders the template at the version a project was made from and at the newest,
and merges the difference into the project; for that it needs the template in a git repository
with a tag per version. shipway ships the template as plain files (`template/`, package data).
`packaged_source()` commits them into a repository in the user's cache, tags the commit with
TEMPLATE_VERSION, and keeps every version it has committed before, so that a project made by
an older shipway on this machine can be updated by a newer one.

Change the template, bump TEMPLATE_VERSION, and set TEMPLATE_DIGEST to what the test
`test_template_version_is_bumped_with_the_template` prints: a test holds the two together.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from shipway.errors import TemplateError

__all__ = [
    "PACKAGED",
    "TEMPLATE_DIGEST",
    "TEMPLATE_VERSION",
    "Source",
    "cache_repo",
    "git",
    "packaged_digest",
    "packaged_source",
]

TEMPLATE_VERSION = "1.5.1"
TEMPLATE_DIGEST = "bcd81b2ecbc160bf"
PACKAGED = Path(__file__).resolve().parent / "template"

# Commits in the cache repository are shipway's, whoever runs it: no user config, hooks or signing.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "shipway",
    "GIT_AUTHOR_EMAIL": "shipway@localhost",
    "GIT_COMMITTER_NAME": "shipway",
    "GIT_COMMITTER_EMAIL": "shipway@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Source:
    """Where copier finds the template (`url`), and which version to render (`ref`)."""

    def __init__(self, url: str, ref: str | None) -> None:
        self.url = url
        self.ref = ref

    def __repr__(self) -> str:
        return f"Source({self.url!r}, ref={self.ref!r})"


def git(*args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None, lines: bool = False) -> str:
    """Run git; its stdout stripped (with `lines`, only of the final newline, for porcelain
    output whose first column may be a space), or TemplateError with its stderr."""
    if shutil.which("git") is None:
        raise TemplateError("git is not installed; `shipway new` and `shipway update` need it. Install git.")
    proc = subprocess.run(
        ["git", "-c", f"core.hooksPath={os.devnull}", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise TemplateError(f"`git {' '.join(args)}` failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.rstrip("\n") if lines else proc.stdout.strip()


def cache_repo() -> Path:
    """The repository that holds every packaged template version this machine has used."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipway" / "template"


def packaged_files() -> list[Path]:
    """The template's files, relative to PACKAGED, sorted."""
    return sorted(
        p.relative_to(PACKAGED)
        for p in PACKAGED.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def packaged_digest() -> str:
    """A hash of the packaged template: its files' paths and contents."""
    digest = hashlib.sha256()
    for rel in packaged_files():
        digest.update(rel.as_posix().encode() + b"\0" + (PACKAGED / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def packaged_source(repo: Path | None = None) -> Source:
    """Commit the packaged template into `repo` (default: `cache_repo()`) if it is not there yet,
    and return where copier finds it and the version to render."""
    repo = repo or cache_repo()
    repo.mkdir(parents=True, exist_ok=True)
    with _locked(repo.parent / f"{repo.name}.lock"):
        if not (repo / ".git").exists():
            git("init", "--quiet", "--initial-branch=main", cwd=repo)
        for child in repo.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        for rel in packaged_files():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PACKAGED / rel, repo / rel)
        git("add", "--all", cwd=repo)
        tree = git("write-tree", cwd=repo)
        head = git("rev-parse", "--verify", "--quiet", "HEAD^{tree}", cwd=repo, check=False)
        if head != tree:
            git(
                "commit",
                "--quiet",
                "--allow-empty",
                "-m",
                f"shipway template {TEMPLATE_VERSION}",
                cwd=repo,
                env=_GIT_ENV,
            )
        tagged = git(
            "rev-parse", "--verify", "--quiet", f"refs/tags/{TEMPLATE_VERSION}^{{tree}}", cwd=repo, check=False
        )
        if not tagged:
            git("tag", TEMPLATE_VERSION, cwd=repo, env=_GIT_ENV)
            tagged = tree
        # A template edited without a version bump (a development install) is the commit itself;
        # copier then calls its version TEMPLATE_VERSION plus the commits since.
        ref = TEMPLATE_VERSION if tagged == tree else git("rev-parse", "HEAD", cwd=repo)
    return Source(_portable(repo), ref)


def _portable(path: Path) -> str:
    """`~/...` when under the home folder: copier records the template's path in the project,
    and the same user's cache is at the same place relative to home on every machine."""
    with contextlib.suppress(ValueError, RuntimeError):
        return "~/" + path.resolve().relative_to(Path.home().resolve()).as_posix()
    return str(path.resolve())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time commits into the cache repository."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; two concurrent first uses may race
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
