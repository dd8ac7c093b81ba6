"""What every command shares: loading a project, reporting an error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from shipway.core.gate import Gate
from shipway.core.service import Service, import_service
from shipway.core.settings import Settings, load_settings
from shipway.errors import ShipwayError

__all__ = ["fail", "load_project", "project_gate"]


def load_project(target: str, flags: dict[str, Any] | None = None) -> tuple[Service, Settings]:
    """Settings first (the project folder may set where service.py is), then the service."""
    path = Path(target)
    root = path if path.is_dir() else (path.parent if path.suffix == ".py" else Path.cwd())
    overrides = {k.replace("__", "."): v for k, v in (flags or {}).items()}
    settings = load_settings(root, overrides)
    if path.is_dir() and settings["service"] != "service.py":
        module_target: str | Path = (
            path / settings["service"] if settings["service"].endswith(".py") else settings["service"]
        )
    else:
        module_target = target
    module, _ = import_service(module_target)
    return Service.from_module(module), settings


def fail(err: ShipwayError | str, code: int = 2) -> NoReturn:
    click.echo(f"error: {err}", err=True)
    sys.exit(code)


def project_gate(settings: Settings) -> Gate | None:
    """The project's validation suites as a gate on rule and model updates (None: no suites, or
    `validation.gate = false`)."""
    if not settings["validation.gate"]:
        return None
    from shipway.validation.gate import suite_gate  # the CLI composes capabilities; serving does not

    return suite_gate([settings.path("validation.suites")])
