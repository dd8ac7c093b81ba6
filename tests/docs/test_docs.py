"""The docs are tested: every setting, command, flag, metric and error is documented,
and the README's service runs as the README says."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from conftest import InProcess

import shipway.errors
from shipway.cli.main import main as cli
from shipway.core.service import Service, import_service
from shipway.core.settings import SETTINGS
from shipway.serving.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def page(name: str) -> str:
    return (DOCS / name).read_text()


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_every_setting_is_in_settings_md() -> None:
    text = page("settings.md")
    missing = [s.key for s in SETTINGS if f"`{s.key}`" not in text]
    assert not missing, f"settings missing from docs/settings.md: {missing}"


def cli_commands() -> dict[str, click.Command]:
    assert isinstance(cli, click.Group)
    return dict(cli.commands)


@pytest.mark.parametrize("name", sorted(cli_commands()))
def test_every_command_and_flag_is_in_cli_md(name: str) -> None:
    text = page("cli.md")
    assert f"## shipway {name}" in text, f"docs/cli.md has no section for `shipway {name}`"
    command = cli_commands()[name]
    flags = [flag for p in command.params if isinstance(p, click.Option) for flag in (*p.opts, *p.secondary_opts)]
    missing = [flag for flag in flags if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]
    assert not missing, f"flags of `shipway {name}` missing from docs/cli.md: {missing}"


def test_serve_has_flags_to_check() -> None:
    # Guards the test above: if the flags moved, it would pass while checking nothing.
    serve = cli_commands()["serve"]
    assert sum(isinstance(p, click.Option) for p in serve.params) == sum(s.flag is not None for s in SETTINGS)


def test_every_metric_is_in_serving_md() -> None:
    text = page("serving.md")
    families = list(Metrics("docs").registry.collect())
    assert families
    # Users see counters with the _total suffix, so that is the name the page must show.
    names = [f.name + "_total" if f.type == "counter" else f.name for f in families]
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"metrics missing from docs/serving.md: {missing}"


def test_every_error_class_is_in_service_md() -> None:
    text = page("service.md")
    missing = [name for name in shipway.errors.__all__ if f"`{name}`" not in text]
    assert not missing, f"errors missing from docs/service.md: {missing}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_docs_links_point_to_files_and_headings_that_exist() -> None:
    generated = {"benchmarks.md"}  # written by `make bench`, which the test suite does not run
    broken = []
    for doc in [README, *DOCS.glob("*.md")]:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", doc.read_text()):
            if target.startswith(("http://", "https://")) or Path(target).name in generated:
                continue
            file = doc.parent / target if target else doc
            if not file.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", file.read_text(), flags=re.M)
                if anchor not in {slug(h) for h in headings}:
                    broken.append(f"{doc.relative_to(ROOT)} -> {target}#{anchor}")
    assert not broken, broken


# -- the README's service --------------------------------------------------------------


def readme_project(tmp_path: Path) -> Path:
    """The README's service.py, saved in a project folder as the README says."""
    blocks = fenced(README.read_text(), "python")
    assert len(blocks) == 1, "the README should hold exactly one python block: the service.py"
    project = tmp_path / "project"
    project.mkdir()
    (project / "service.py").write_text(blocks[0])
    return project


def readme_call() -> tuple[str, bytes, object]:
    """The path and body of the README's curl call to its service, and the answer it shows."""
    text = README.read_text()
    section = text[text.index("## Your own service") :]
    curl = next(line for line in section.splitlines() if line.startswith("curl "))
    args = shlex.split(curl)
    url = next(a for a in args[1:] if "localhost" in a)
    body = args[args.index("-d") + 1].encode()
    answer = json.loads(fenced(section, "json")[0])
    return url[url.index("/") :], body, answer


def test_readme_service_runs_in_process(tmp_path: Path) -> None:
    project = readme_project(tmp_path)
    module, root = import_service(project)
    assert root == project.resolve()
    service = Service.from_module(module)
    pipeline = service.setup(root / "artifacts")
    path, body, answer = readme_call()
    assert path == "/predict"
    assert json.loads(pipeline.render(pipeline.run(body))) == answer
    # The optional parts it shows work too: the warm-up example, and the batch form agrees.
    assert service.has_example and service.has_batch
    pipeline.run(service.example)
    assert pipeline.run_batch([body, body]) == [pipeline.run(body)] * 2


def test_readme_service_serves_the_curl_call(tmp_path: Path, serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(readme_project(tmp_path))  # waits for /ready, so the warm-up passed
    try:
        path, body, answer = readme_call()
        response = server.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        assert response.json() == answer
        batch = server.post("/predict/batch", json={"items": [json.loads(body)] * 3})
        assert batch.json() == {"items": [answer] * 3}
    finally:
        server.stop()
