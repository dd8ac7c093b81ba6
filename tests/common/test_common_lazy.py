"""A package's names read from their submodules on first use (shipway.common.lazy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shipway.common.lazy import lazy_names


def _package(root: Path) -> None:
    (root / "lazy_pkg").mkdir()
    (root / "lazy_pkg" / "__init__.py").write_text(
        "from shipway.common.lazy import lazy_names\n"
        "__all__ = ['Thing', 'make']\n"
        "__getattr__ = lazy_names(__name__, {'Thing': 'things', 'make': 'things'})\n"
    )
    (root / "lazy_pkg" / "things.py").write_text("class Thing:\n    pass\n\ndef make():\n    return Thing()\n")


def test_a_name_is_imported_from_its_submodule_when_first_read(tmp_path: Path) -> None:
    _package(tmp_path)
    script = (
        "import sys, lazy_pkg\n"
        "before = 'lazy_pkg.things' in sys.modules\n"
        "from lazy_pkg import Thing, make\n"
        "print(before, 'lazy_pkg.things' in sys.modules, Thing.__module__, type(make()) is Thing)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "lazy_pkg.things", "True"]


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_ = lazy_names("shipway.monitoring.drift", {"Profile": "profile"})
    with pytest.raises(AttributeError, match=r"module 'shipway\.monitoring\.drift' has no attribute 'Nope'"):
        getattr_("Nope")
    assert getattr_("Profile").__name__ == "Profile"


def test_the_monitoring_packages_read_their_names_lazily() -> None:
    # Importing drift does not import numpy's modules (docstring of shipway.monitoring.drift).
    script = "import sys, shipway.monitoring.drift as d\nprint('shipway.monitoring.drift.window' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
