"""`shipway new`: the choices, the prompts, the errors, and what a generated project holds.

Generated projects are trained, tested and served in test_templates_projects.py; updates are in
test_templates_update.py; `shipway check` in test_templates_check.py.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from shipway.cli.main import main as cli
from shipway.core.settings import SETTINGS, load_settings
from shipway.templates import QUESTIONS, TEMPLATE_VERSION, TemplateError, create_project
from shipway.templates.source import PACKAGED, TEMPLATE_DIGEST, cache_repo, git, packaged_digest, packaged_source

SHIPWAY = [sys.executable, "-m", "shipway"]


@pytest.fixture(autouse=True)
def template_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The template's git repository in a temporary cache, not the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield tmp_path / "cache"


# -- the template and its version ----------------------------------------------------------------


def test_copier_yml_declares_the_same_choices_as_the_cli() -> None:
    config = yaml.safe_load((PACKAGED / "copier.yml").read_text())
    for question in QUESTIONS:
        assert config[question.key]["choices"] == list(question.values), question.key
        assert config[question.key]["default"] == question.default, question.key


def test_template_version_is_bumped_with_the_template() -> None:
    # Projects record the template version that made them, and `shipway update` finds that
    # version by its tag: a template changed under the same version would be merged wrongly.
    assert packaged_digest() == TEMPLATE_DIGEST, (
        f"the template in {PACKAGED} changed: bump TEMPLATE_VERSION (now {TEMPLATE_VERSION}) in "
        f"shipway/templates/source.py and set TEMPLATE_DIGEST = {packaged_digest()!r}"
    )


def test_the_packaged_template_becomes_a_tagged_repository_once(template_cache: Path) -> None:
    first = packaged_source()
    again = packaged_source()
    repo = cache_repo()
    assert repo.is_relative_to(template_cache)
    assert first.ref == again.ref == TEMPLATE_VERSION
    assert Path(first.url).expanduser().resolve() == repo.resolve()
    assert git("tag", "--list", cwd=repo).split() == [TEMPLATE_VERSION]
    assert len(git("log", "--oneline", cwd=repo).splitlines()) == 1
    assert git("status", "--porcelain", cwd=repo) == ""


# -- shipway new ---------------------------------------------------------------------------------


def run_new(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHIPWAY, "new", *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_new_with_flags_makes_a_committed_project_that_records_its_template(tmp_path: Path) -> None:
    result = run_new(
        "intent-router", "--library", "custom", "--input", "text", "--output", "label", "--yes", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "intent-router"
    assert (
        f"created intent-router from shipway template {TEMPLATE_VERSION}: custom, text in, label out" in result.stdout
    )
    expected = {".copier-answers.yml", ".gitignore", "Makefile", "README.md", "data.py", "features.py", "model.py"}
    expected |= {"requirements.txt", "rules.yaml", "service.py", "shipway.toml", "train.py"}
    files = {p.name for p in project.iterdir() if p.name not in {".git", "artifacts", "build", "__pycache__"}}
    assert files == expected | {"tests", "validation"}
    assert sorted(p.name for p in (project / "tests").iterdir()) == ["conftest.py", "test_service.py"]
    assert [p.name for p in (project / "validation").iterdir()] == ["smoke.yaml"]

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == TEMPLATE_VERSION
    assert Path(answers["_src_path"]).expanduser().resolve() == cache_repo().resolve()
    assert {k: answers[k] for k in ("name", "library", "input", "output")} == {
        "name": "intent-router",
        "library": "custom",
        "input": "text",
        "output": "label",
    }
    # Under git, clean (the trained artifacts are ignored): ready for `shipway update`.
    assert git("log", "--format=%s", cwd=project) == f"shipway new intent-router (template {TEMPLATE_VERSION})"
    assert git("status", "--porcelain", cwd=project) == ""
    # Trained at once, since custom needs no library.
    manifest = (project / "artifacts" / "manifest.json").read_text()
    for key in ("version", "dataset_version", "run_id", "labels"):
        assert f'"{key}"' in manifest


def test_without_flags_or_a_terminal_new_takes_the_defaults(tmp_path: Path) -> None:
    result = run_new("svc", "--no-train", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((tmp_path / "svc" / ".copier-answers.yml").read_text())
    assert (answers["library"], answers["input"], answers["output"]) == ("sklearn", "text", "label")
    assert "python train.py" in result.stdout  # not trained, so the next steps say how


@pytest.mark.parametrize(
    ("flag", "value", "listed"),
    [
        (
            "--library",
            "tensorflow",
            ["sklearn", "xgboost", "lightgbm", "pytorch", "onnx", "sentence-embeddings", "custom"],
        ),
        ("--input", "image", ["text", "tabular", "records"]),
        ("--output", "bounding-boxes", ["label", "score", "binary", "ranking"]),
    ],
)
def test_an_unknown_choice_is_refused_with_the_valid_ones(
    tmp_path: Path, flag: str, value: str, listed: list[str]
) -> None:
    result = CliRunner().invoke(cli, ["new", "svc", flag, value, "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"error: {flag} {value!r} is not a choice. Choose one of:" in result.output
    for choice in listed:
        assert re.search(rf"^  {re.escape(choice)} +\S", result.output, flags=re.M), choice
    assert not (tmp_path / "svc").exists()


def test_sentence_embeddings_take_text(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["new", "svc", "--library", "sentence-embeddings", "--input", "tabular", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--library sentence-embeddings embeds text, so it takes --input text, not 'tabular'" in result.output


def test_a_bad_name_and_an_occupied_folder_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["new", "my service", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "the service name 'my service' cannot be used" in result.output
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(TemplateError, match="already exists and is not empty"):
        create_project("taken", {"library": "custom"}, tmp_path)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_new_asks_in_a_terminal(tmp_path: Path) -> None:
    """A real terminal (a pty): the questions, a wrong answer asked again, defaults on Enter."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*SHIPWAY, "new", "asked", "--no-train"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=tmp_path,
        env={**os.environ, "TERM": "dumb", "COLUMNS": "120"},
    )
    os.close(terminal)
    screen = ""

    def until(text: str) -> None:
        nonlocal screen
        deadline = time.monotonic() + 60
        while text not in screen:
            assert time.monotonic() < deadline, f"no {text!r} on the screen:\n{screen}"
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    screen += os.read(controller, 4096).decode(errors="replace")
                except OSError:  # the process closed the terminal
                    break

    try:
        until("library [sklearn]:")
        assert "Which ML library does the model use?" in screen
        assert "sentence-embeddings" in screen and "plain Python" in screen
        os.write(controller, b"tensorflow\n")
        until("is not one of")
        os.write(controller, b"custom\n")
        until("input [text]:")
        os.write(controller, b"\n")
        until("output [label]:")
        os.write(controller, b"score\n")
        until("next:")
        assert proc.wait(60) == 0, screen
    finally:
        proc.kill()
        os.close(controller)
    answers = yaml.safe_load((tmp_path / "asked" / ".copier-answers.yml").read_text())
    assert (answers["library"], answers["input"], answers["output"]) == ("custom", "text", "score")


# -- what a project holds ------------------------------------------------------------------------


def test_shipway_toml_documents_every_setting_and_loads(tmp_path: Path) -> None:
    project = create_project("documented", {"library": "custom"}, tmp_path, template=str(PACKAGED), commit=False).path
    text = (project / "shipway.toml").read_text()
    settings = load_settings(project)  # every active key is a setting of the right type
    assert settings["name"] == "documented"
    assert settings["rules.file"] == "rules.yaml"
    # Every setting is there, active or commented out with its default, under its own table.
    keys, table = [], ""
    for line in text.splitlines():
        if header := re.fullmatch(r"\[([\w.]+)\]", line):
            table = header.group(1) + "."
        elif entry := re.fullmatch(r"(?:# )?(\w+) = .+", line):
            keys.append(table + entry.group(1))
    assert sorted(keys) == sorted(s.key for s in SETTINGS), "shipway.toml.jinja must list every setting once"
    uncommented = tomllib.loads(
        "\n".join(line.removeprefix("# ") for line in text.splitlines() if " = " in line or line.startswith("["))
    )
    defaults = {s.key: s.default for s in SETTINGS}
    for key in keys:
        section, _, name = key.rpartition(".")
        table = uncommented
        for part in section.split(".") if section else ():
            table = table[part]
        value = table[name]
        if f"# {name} = " in text:
            assert value == defaults[key], f"{key}: the commented value is not the default"
    # Each key has its help above it.
    for s in SETTINGS:
        section, _, name = s.key.rpartition(".")
        # Searched from its own table's header: two tables can hold keys of the same name.
        start = text.index(f"[{section}]\n") if section else 0
        block = re.compile(rf"((?:^# .*\n)+)^(?:# )?{name} = ", flags=re.M).search(text, start)
        assert block and s.help.split()[0] in block.group(1), s.key


def test_every_choice_renders_code_that_lints_clean(tmp_path: Path) -> None:
    """Every library, input and output: the generated Python is valid, formatted and lint-free."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed beside this Python")
    count = 0
    for library in QUESTIONS[0].values:
        for input_kind in QUESTIONS[1].values:
            if library == "sentence-embeddings" and input_kind != "text":
                continue
            for output in QUESTIONS[2].values:
                answers = {"library": library, "input": input_kind, "output": output}
                name = f"{library}-{input_kind}-{output}"
                create_project(name, answers, tmp_path, template=str(PACKAGED), commit=False)
                count += 1
    assert count == 6 * 12 + 4
    for project in sorted(tmp_path.iterdir()):
        if project.name == "cache":
            continue
        rules = "E,F,W,I,B,UP,RUF"
        lint = [str(ruff), "check", "--isolated", "--select", rules, "--line-length", "120", "--quiet", "."]
        fmt = [str(ruff), "format", "--isolated", "--line-length", "120", "--check", "--quiet", "."]
        for command in (lint, fmt):
            result = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
            assert result.returncode == 0, f"{project.name}: {' '.join(command[1:3])}\n{result.stdout}{result.stderr}"
