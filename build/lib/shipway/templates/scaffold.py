"""Scaffold: a new project from the template (`shipway new`).

copier renders the template with the answers and records both in the project's
.copier-answers.yml; the project is then put under git, which `shipway update` needs.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipway.errors import TemplateError
from shipway.templates.choices import BY_KEY, check_answers, check_name
from shipway.templates.source import Source, git, packaged_source

__all__ = [
    "ANSWERS_FILE",
    "Scaffold",
    "copier_module",
    "create_project",
    "missing_requirements",
    "read_answers",
    "train_project",
]

ANSWERS_FILE = ".copier-answers.yml"


@dataclass
class Scaffold:
    """What `create_project` made."""

    path: Path
    answers: dict[str, str]
    template_version: str
    committed: bool  # the project is a new git repository with the files committed
    notes: list[str] = field(default_factory=list)


def copier_module() -> Any:
    try:
        import copier
    except ImportError as err:
        raise TemplateError(
            f"`shipway new` and `shipway update` need copier, which is not installed ({err}). "
            f"Install it with `pip install 'copier>=9.4'`."
        ) from None
    return copier


def create_project(
    name: str,
    answers: dict[str, str],
    directory: Path,
    *,
    template: str | None = None,
    vcs_ref: str | None = None,
    commit: bool = True,
) -> Scaffold:
    """Render the template into `directory/name` with `answers` (library, input, output).

    `template` is a copier template (a folder or git URL); by default shipway's own, at its
    packaged version. Raises TemplateError for a bad name or answer or an occupied folder."""
    check_name(name)
    answers = check_answers({k: v for k, v in answers.items() if v is not None})
    target = Path(directory) / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise TemplateError(f"{target} already exists and is not empty. Choose another name, or another --dir.")
    source = Source(template, vcs_ref) if template else packaged_source()
    copier = copier_module()
    data = {"name": name, **{q.key: answers.get(q.key, q.default) for q in BY_KEY.values()}}
    try:
        copier.run_copy(
            source.url,
            target,
            data=data,
            vcs_ref=source.ref,
            defaults=True,
            quiet=True,
            cleanup_on_error=True,
        )
    except Exception as err:  # copier raises many types: bad answers, a template it cannot read
        raise TemplateError(f"copier could not render the template {source.url}: {type(err).__name__}: {err}") from err
    recorded = read_answers(target)
    scaffold = Scaffold(target, data, str(recorded.get("_commit", "")), committed=False)
    if commit:
        _commit(scaffold)
    return scaffold


def read_answers(project: Path) -> dict[str, Any]:
    """The project's .copier-answers.yml: the template's path, its version (`_commit`), the answers."""
    file = Path(project) / ANSWERS_FILE
    if not file.is_file():
        raise TemplateError(
            f"{project} has no {ANSWERS_FILE}, so no template made it; `shipway update` updates projects "
            f"made by `shipway new`."
        )
    data = yaml.safe_load(file.read_text()) or {}
    if not isinstance(data, dict):
        raise TemplateError(f"{file} is not a YAML mapping; restore it from git.")
    return data


def missing_requirements(library: str) -> list[str]:
    """The generated project's requirements for `library` that are not importable here."""
    choice = BY_KEY["library"].choice(library)
    return [req for req, module in zip(choice.requirements, choice.imports, strict=True) if not _importable(module)]


def train_project(project: Path) -> subprocess.CompletedProcess[str]:
    """Run the project's train.py (which builds the dataset first) with this interpreter."""
    return subprocess.run(
        [sys.executable, "train.py"], cwd=project, capture_output=True, text=True, env=_quiet_env(), check=False
    )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _quiet_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _commit(scaffold: Scaffold) -> None:
    """A new git repository with the generated files, unless the folder is already inside one
    (a monorepo): then the files are left for the user to commit."""
    path = scaffold.path
    inside = git("rev-parse", "--is-inside-work-tree", cwd=path, check=False) == "true"
    if inside:
        scaffold.notes.append(
            "the folder is inside a git repository: commit the new files before `shipway update` can run."
        )
        return
    git("init", "--quiet", "--initial-branch=main", cwd=path)
    git("add", "--all", cwd=path)
    identity = {}
    if not git("config", "user.email", cwd=path, check=False):
        identity = {"GIT_AUTHOR_NAME": "shipway", "GIT_AUTHOR_EMAIL": "shipway@localhost"}
        identity |= {"GIT_COMMITTER_NAME": "shipway", "GIT_COMMITTER_EMAIL": "shipway@localhost"}
    message = f"shipway new {path.name} (template {scaffold.template_version or 'unversioned'})"
    git("commit", "--quiet", "-m", message, cwd=path, env=identity)
    scaffold.committed = True
