"""`shipway update`: a newer template's changes merged into a project made from an older one,
with the scientist's edits kept, conflicts shown, and the project's tests run.

The template versions are real: a git repository of the packaged template in a temporary
folder, changed and tagged the way a shipway release changes and tags its template.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from shipway.cli.main import main as cli
from shipway.templates import TEMPLATE_VERSION, TemplateError, create_project, update_project
from shipway.templates.source import PACKAGED
from shipway.templates.update import UNDO

IDENTITY = ["-c", "user.name=Scientist", "-c", "user.email=scientist@example.com", "-c", "commit.gpgsign=false"]
ANSWERS = {"library": "custom", "input": "text", "output": "label"}
SCIENTIST_LINE = "ALTERNATIVES = 1  # one runner-up is enough for our queues"
TEMPLATE_LINE = "ALTERNATIVES = 2  # runners-up returned after the label"


@pytest.fixture(autouse=True)
def template_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def release(
    repo: Path, version: str, edits: dict[str, tuple[str, str]], new_files: dict[str, str] | None = None
) -> None:
    """Change the template's files (old text -> new text), commit, and tag `version`."""
    for name, (old, new) in edits.items():
        file = repo / name
        text = file.read_text()
        assert old in text, f"{old!r} not in {name}"
        file.write_text(text.replace(old, new, 1))
    for name, content in (new_files or {}).items():
        (repo / name).write_text(content)
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "-m", f"template {version}", cwd=repo)
    git("tag", version, cwd=repo)


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """The packaged template as a git repository with one version, 1.0.0."""
    repo = Path(shutil.copytree(PACKAGED, tmp_path / "template"))
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "-m", "template 1.0.0", cwd=repo)
    git("tag", "1.0.0", cwd=repo)
    return repo


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    """A project made from template 1.0.0, trained, and edited by its scientist (committed)."""
    made = create_project("router", ANSWERS, tmp_path / "work", template=str(template))
    assert made.committed and made.template_version == "1.0.0"
    path = made.path
    subprocess.run([sys.executable, "train.py"], cwd=path, check=True, capture_output=True)  # ignored by git
    service = path / "service.py"
    service.write_text(service.read_text().replace(TEMPLATE_LINE, SCIENTIST_LINE))
    with (path / "service.py").open("a") as out:
        out.write(
            '\n\ndef route(prediction: Prediction) -> str:\n    return "urgent" if prediction.label == "delivery" else "general"\n'
        )
    git("commit", "--quiet", "-am", "fewer runners-up; a routing helper", cwd=path)
    return path


def mtimes(path: Path) -> dict[str, int]:
    return {name: (path / name).stat().st_mtime_ns for name in git("ls-files", cwd=path).splitlines()}


def test_an_update_brings_the_template_changes_and_keeps_the_edits(template: Path, project: Path) -> None:
    before = mtimes(project)
    release(
        template,
        "1.1.0",
        {
            "README.md.jinja": (
                "## Template updates",
                "## Monitoring\n\nWatch the prediction log.\n\n## Template updates",
            ),
            "service.py.jinja": (
                '"""Read the model train.py saved."""',
                '"""Read the model train.py saved to artifacts/."""',
            ),
        },
        {"CHANGELOG.md": "# Changes\n\n1.1.0: monitoring notes.\n"},
    )
    result = update_project(project)
    assert (result.before, result.after) == ("1.0.0", "1.1.0")
    assert result.changed == ["CHANGELOG.md", "README.md", "service.py"]
    assert result.conflicts == []
    service = (project / "service.py").read_text()
    assert SCIENTIST_LINE in service and "def route(prediction: Prediction)" in service  # the scientist's
    assert '"""Read the model train.py saved to artifacts/."""' in service  # the template's
    assert "## Monitoring" in (project / "README.md").read_text()
    after = mtimes(project)
    unchanged = [name for name in before if name not in result.changed and name != ".copier-answers.yml"]
    assert "train.py" in unchanged and "data.py" in unchanged
    # Files the update did not change keep their times, so the project's Makefile does not retrain.
    assert {name: after[name] for name in unchanged} == {name: before[name] for name in unchanged}
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "1.1.0"
    assert result.tests is not None
    assert result.tests.returncode == 0, result.tests.stdout
    assert result.ok


def test_a_conflict_is_left_in_the_file_between_markers_and_the_tests_wait(template: Path, project: Path) -> None:
    release(template, "1.1.0", {"service.py.jinja": (TEMPLATE_LINE, TEMPLATE_LINE.replace("2", "3"))})
    outcome = CliRunner().invoke(cli, ["update", str(project)])
    assert outcome.exit_code == 1, outcome.output
    assert "updated router from template version 1.0.0 to 1.1.0: 1 file changed" in outcome.output
    assert "  C service.py" in outcome.output
    assert "conflicts in service.py: your lines and the template's are both there" in outcome.output
    text = (project / "service.py").read_text()
    both = (
        f"<<<<<<< before updating\n{SCIENTIST_LINE}\n=======\n{TEMPLATE_LINE.replace('2', '3')}\n>>>>>>> after updating"
    )
    assert both in text
    assert "tests" not in outcome.output.split("conflicts in")[0]  # no test run over a conflicted file
    # The undo the command prints works with the conflict in place.
    assert f"`{UNDO}` undoes it" in outcome.output
    undo = subprocess.run(UNDO, shell=True, cwd=project, capture_output=True, text=True, check=False)
    assert undo.returncode == 0, undo.stderr
    assert git("status", "--porcelain", cwd=project) == ""
    assert SCIENTIST_LINE in (project / "service.py").read_text()
    assert "<<<<<<<" not in (project / "service.py").read_text()


def test_the_command_reports_the_files_and_the_tests(template: Path, project: Path) -> None:
    release(template, "1.2.0", {"Makefile.jinja": ("PYTHON ?= $(VENV)/bin/python", "PYTHON ?= $(VENV)/bin/python3")})
    outcome = CliRunner().invoke(cli, ["update", str(project)])
    assert outcome.exit_code == 0, outcome.output
    assert "updated router from template version 1.0.0 to 1.2.0: 1 file changed\n  M Makefile" in outcome.output
    assert "the project's tests pass: 5 passed" in outcome.output
    git("commit", "--quiet", "-am", "template 1.2.0", cwd=project)
    again = CliRunner().invoke(cli, ["update", str(project), "--no-tests"])
    assert "router is already at template version 1.2.0; nothing to update." in again.output


def test_uncommitted_changes_or_no_git_stop_the_update(template: Path, project: Path, tmp_path: Path) -> None:
    release(template, "1.1.0", {"Makefile.jinja": ("PYTHON ?= $(VENV)/bin/python", "PYTHON ?= $(VENV)/bin/python3")})
    (project / "train.py").write_text((project / "train.py").read_text() + "\n# tuning\n")
    with pytest.raises(TemplateError, match=r"has uncommitted changes \(train.py\)\. Commit or stash them first"):
        update_project(project)
    loose = create_project("loose", ANSWERS, tmp_path / "elsewhere", template=str(template), commit=False).path
    with pytest.raises(TemplateError, match="is not under git"):
        update_project(loose)
    with pytest.raises(TemplateError, match=r"has no \.copier-answers\.yml, so no template made it"):
        update_project(tmp_path / "template")


def test_a_project_from_the_packaged_template_is_up_to_date(tmp_path: Path) -> None:
    made = create_project("fresh", ANSWERS, tmp_path)
    assert made.template_version == TEMPLATE_VERSION
    before = mtimes(made.path)
    result = update_project(made.path)
    assert mtimes(made.path) == before  # nothing rewritten
    assert (result.before, result.after, result.changed) == (TEMPLATE_VERSION, TEMPLATE_VERSION, [])
    assert not result.updated and result.tests is None


def test_the_docs_name_the_current_template_version_and_the_undo() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "templates.md").read_text()
    assert f"`shipway.templates.TEMPLATE_VERSION`, {TEMPLATE_VERSION} now" in docs
    assert f"`{UNDO}`" in docs
