"""Every ```python block of docs/*.md runs: the blocks of a page run in order, in one namespace,
in a folder set up as the page's reader would have it (the names a block takes from its prose,
such as `artifacts` or `t0`, are defined by the page's set-up below). A block that is not meant
to run is fenced ```python-sketch; the README's block is its service.py (test_docs.py runs it)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SERVICES

DOCS = ROOT / "docs"
README = ROOT / "README.md"


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """(line, code) of every ```python block of `page`."""
    text = page.read_text()
    return [
        (text[: m.start()].count("\n") + 2, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    ]


def readme_service() -> str:
    ((_, code),) = python_blocks(README)
    return code


def copy_project(source: Path, folder: Path) -> Path:
    shutil.copytree(
        source, folder, ignore=shutil.ignore_patterns("__pycache__", "data", "dataset", "artifacts"), dirs_exist_ok=True
    )
    return folder


def banking77_project(folder: Path, banking77: Path) -> Path:
    """The banking77 example in `folder`: its files, with the trained artifacts of `banking77`."""
    copy_project(ROOT / "examples" / "banking77", folder)
    shutil.copytree(banking77 / "artifacts", folder / "artifacts", dirs_exist_ok=True)
    return folder


def module_names(path: Path, name: str) -> dict[str, Any]:
    """The names a module file defines, as a reader who wrote it has them."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(vars(module))


# -- what each page's reader has at hand -------------------------------------------------------


def service_page(tmp: Path, banking77: Path) -> dict[str, Any]:
    # The page's examples are the banking77 example's types and functions; its last block
    # imports the README's service.py as `service`, from the project folder.
    banking77_project(tmp, banking77)
    names = module_names(banking77 / "service.py", "docs_banking77_service")
    (tmp / "service.py").write_text(readme_service())
    return {**names, "artifacts": Path("artifacts")}


def security_page(tmp: Path, banking77: Path) -> dict[str, Any]:
    (tmp / "artifacts").mkdir()
    (tmp / "artifacts" / "model.skops").write_bytes(b"a model")
    return {"artifacts": tmp / "artifacts"}


def recipes_page(tmp: Path, banking77: Path) -> dict[str, Any]:
    return {"__file__": str(tmp / "service.py")}


def rules_page(tmp: Path, banking77: Path) -> dict[str, Any]:
    from shipway.core.service import load_project

    copy_project(SERVICES / "router", tmp)
    service, settings = load_project(tmp)
    pipeline = service.setup(settings.path("artifacts"))
    output = {"intent": "lost_or_stolen_card", "probability": 0.42}
    return {
        "pipeline": pipeline,
        "manifest": {"labels": ["card_arrival", "lost_or_stolen_card", "age_limit", "gibberish"]},
        "model_output": output,
        "rows": [({"text": "my card is gone"}, output, {}), ({"text": "how old"}, {"intent": "age_limit"}, {})],
    }


def store_page(tmp: Path, banking77: Path) -> dict[str, Any]:
    (tmp / "path" / "to" / "project" / ".shipway").mkdir(parents=True)
    return {}


def analysis_page(tmp: Path, banking77: Path) -> dict[str, Any]:
    (tmp / "project" / ".shipway" / "export").mkdir(parents=True)
    return {"t0": time.time() - 86400, "t1": time.time()}


def validation_page(tmp: Path, banking77: Path) -> Iterator[dict[str, Any]]:
    from shipway.validation import load_pipeline
    from tests.validation.test_validation_notify import Recorder

    banking77_project(tmp, banking77)
    recorder = Recorder()
    try:
        yield {"candidate_pipeline": load_pipeline(tmp), "slack_url": recorder.url + "/slack"}
    finally:
        recorder.close()


def experiments_page(tmp: Path, banking77: Path) -> Iterator[dict[str, Any]]:
    (tmp / "shipway.toml").write_text(f'name = "docs"\n[store]\nurl = "sqlite:///{tmp / "store.db"}"\n')
    (tmp / "artifacts").mkdir()
    (tmp / "artifacts" / "model.joblib").write_bytes(b"a model")
    yield {}
    from shipway.store import open_store

    with open_store(f"sqlite:///{tmp / 'store.db'}") as store:
        (run,) = store.list_runs()
    assert run.name == "tfidf-lr" and run.status == "finished"


def drift_page(tmp: Path, banking77: Path) -> Iterator[dict[str, Any]]:
    ray = pytest.importorskip("ray", reason="the Ray engine needs pip install 'shipway[ray]' (in dev)")
    from shipway.monitoring.drift.profile import Profile
    from shipway.monitoring.drift.thresholds import Thresholds
    from tests.engine.test_engine_ray import drift_log, items

    reference_in, reference_out = items(1_000, seed=1)
    Profile.build(reference_in, reference_out, kinds={"note": "text"}).save(tmp / "artifacts")
    drift_log(tmp / "exported-log.parquet", 2_000, seed=5)
    ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    try:
        yield {
            "Profile": Profile,
            "thresholds": Thresholds(features={"note": {"methods": ["text_length"]}}),
            "t0": 1_700_000_000,
            "t1": 1_700_000_000 + 2_000,
        }
    finally:
        ray.shutdown()


def registry_page(tmp: Path, banking77: Path) -> Iterator[dict[str, Any]]:
    yield {}  # the page's block makes its own store in a temporary folder


PAGES: dict[str, Callable[[Path, Path], Any]] = {
    "analysis.md": analysis_page,
    "drift.md": drift_page,
    "experiments.md": experiments_page,
    "recipes.md": recipes_page,
    "registry.md": registry_page,
    "rules.md": rules_page,
    "security.md": security_page,
    "service.md": service_page,
    "store.md": store_page,
    "validation.md": validation_page,
}


def test_every_page_with_python_blocks_has_a_setup() -> None:
    pages = {page.name for page in DOCS.glob("*.md") if python_blocks(page)}
    assert pages == set(PAGES), (
        f"pages with ```python blocks but no set-up here: {sorted(pages - set(PAGES))}; add one to PAGES "
        f"(or fence a block that cannot run as ```python-sketch); set-ups of pages without blocks: "
        f"{sorted(set(PAGES) - pages)}"
    )


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    """`folder` as the working directory and the first place imports look, as for its reader."""
    before, modules = Path.cwd(), set(sys.modules)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        os.chdir(before)
        for name in set(sys.modules) - modules:
            if getattr(sys.modules[name], "__file__", None) and str(folder) in str(sys.modules[name].__file__):
                del sys.modules[name]  # the page's `service` is not the next page's


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_python_blocks_of_a_page_run(name: str, tmp_path: Path, banking77: Path) -> None:
    blocks = python_blocks(DOCS / name)
    with inside(tmp_path), contextlib.ExitStack() as stack:
        made = PAGES[name](tmp_path, banking77)
        names = stack.enter_context(contextlib.contextmanager(lambda: made)()) if isinstance(made, Iterator) else made
        namespace: dict[str, Any] = {"__name__": f"docs_{name.removesuffix('.md')}", **names}
        for line, code in blocks:
            try:
                exec(compile(code, f"docs/{name}:{line}", "exec"), namespace)
            except Exception as err:
                raise AssertionError(f"the block at docs/{name}:{line} fails: {err!r}") from err
