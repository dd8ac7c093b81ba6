"""docs/architecture.md names real modules, and its layers are the ones import-linter checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_every_module_the_page_names_exists() -> None:
    named = set(re.findall(r"`(?:src/)?(shipway/[\w/]+(?:\.py)?)`", DOC))
    # `monitoring/drift/_stats.py` style: a path relative to shipway/ after a package named just before
    named |= {
        f"shipway/{p}"
        for p in re.findall(
            r"`((?:core|rules|store|web|engine|validation|monitoring|experiments|inspection|serving|cli)/[\w/]+\.py)`",
            DOC,
        )
    }
    assert len(named) > 20
    missing = sorted(p for p in named if "<" not in p and not (ROOT / "src" / p).exists())
    assert missing == []


def test_the_layers_on_the_page_are_the_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    block = DOC.split("## The layers", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    for layer in layers:
        for package in re.split(r"[|:]", layer):
            name = package.strip().strip("()")
            assert re.search(rf"\b{name}\b", block), f"layer {name!r} of the contract is not on the page"


def test_the_rewrite_tool_moves_old_paths_once() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("rewrite_moved_imports", ROOT / "tools" / "rewrite_moved_imports.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    s = "shipway"  # spelt apart, so that the tool run over the tests leaves this test alone
    old = f"from {s}.monitoring import stats\nfrom {s}.times import check_time\nsee {s}/tokens.py\n"
    new = tool.rewrite(old)
    assert new == (
        f"from {s}.monitoring.drift import _stats as stats\nfrom {s}.common.times import check_time\n"
        f"see {s}/web/tokens.py\n"
    )
    assert tool.rewrite(new) == new
    for _, module in tool.MOVES:  # every target exists
        assert (ROOT / "src" / (module.replace(".", "/") + ".py")).exists(), module
