"""What every command shares: loading a project, reporting an error."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click
import orjson

from shipway.core.gate import Gate
from shipway.core.service import Service
from shipway.core.service import load_project as core_load_project
from shipway.core.settings import Settings
from shipway.errors import ShipwayError
from shipway.project import Project

__all__ = ["echo_json", "fail", "load_project", "open_project", "project_gate", "table"]


def load_project(target: str, flags: dict[str, Any] | None = None) -> tuple[Service, Settings]:
    """The project in TARGET, with CLI flags (`serve__port`-style keys) as setting overrides."""
    return core_load_project(target, {k.replace("__", "."): v for k, v in (flags or {}).items()})


def open_project(target: str, flags: dict[str, Any] | None = None, *, gated: bool = False) -> Project:
    """The Project in TARGET (CLI flags as setting overrides); `gated` gives it the validation
    suites as its gate, unless `validation.gate = false` or there are none."""
    project = Project.load(target, {k.replace("__", "."): v for k, v in (flags or {}).items()})
    if gated:
        project.gate = project_gate(project.settings)
    return project


def echo_json(value: Any) -> None:
    """Print `value` as indented JSON; what JSON has no type for is printed as its text."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


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


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: set[int]) -> list[str]:
    """Rows as aligned text columns (`right`: the indexes of right-aligned columns), indented."""
    cells = [[str(h) for h in headers], *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    last = len(headers) - 1
    lines = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if i in right else (cell if i == last else cell.ljust(widths[i]))
            for i, cell in enumerate(row)
        ]
        lines.append("  " + "  ".join(parts).rstrip())
    return lines
