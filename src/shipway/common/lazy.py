"""A package's public names imported on first use, from the submodules that define them.

    __getattr__ = lazy_names(__name__, {"Alerter": "alerter", "load_alerts": "alert_file"})

The package's `__getattr__` (PEP 562) imports `<package>.<submodule>` when one of its names
is first read, so importing the package stays cheap (no numpy to read a drift threshold).
Names go under `TYPE_CHECKING` imports too, for type checkers and readers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` of `package` that reads each name of `homes` (name -> submodule) from
    its submodule; any other name is an AttributeError, as for a module without it."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home}"), name)

    return __getattr__
