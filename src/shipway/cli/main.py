"""`shipway serve`, `shipway predict` and `shipway settings`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from shipway.core.service import Service, import_service, read_ids
from shipway.core.settings import ENVIRONMENT, SETTINGS, Settings, load_settings, settings_markdown
from shipway.errors import ShipwayError

__all__ = ["main"]


def _setting_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One CLI flag per setting that declares one (SETTINGS is the single source)."""
    for setting in reversed(SETTINGS):
        if setting.flag is None:
            continue
        dest = setting.key.replace(".", "__")
        if setting.type is bool:
            fn = click.option(setting.flag, dest, default=None, help=setting.help)(fn)
        else:
            fn = click.option(setting.flag, dest, type=setting.type, default=None, help=setting.help)(fn)
    return fn


def _load(target: str, flags: dict[str, Any]) -> tuple[Service, Settings]:
    """Settings first (the project folder may set where service.py is), then the service."""
    path = Path(target)
    root = path if path.is_dir() else (path.parent if path.suffix == ".py" else Path.cwd())
    overrides = {k.replace("__", "."): v for k, v in flags.items()}
    settings = load_settings(root, overrides)
    if path.is_dir() and settings["service"] != "service.py":
        module_target: str | Path = (
            path / settings["service"] if settings["service"].endswith(".py") else settings["service"]
        )
    else:
        module_target = target
    module, _ = import_service(module_target)
    service = Service.from_module(module)
    return service, settings


def _fail(err: ShipwayError) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


@click.group()
@click.version_option(package_name="shipway")
def main() -> None:
    """shipway: from predict() to a production model service."""


@main.command()
@click.argument("target", default=".")
@_setting_options
def serve(target: str, **flags: Any) -> None:
    """Serve the service in TARGET (a folder, a service.py, or a module path) over HTTP."""
    from shipway.serving.server import serve as run_server

    try:
        service, settings = _load(target, flags)
        host, port = settings["serve.host"], settings["serve.port"]
        click.echo(
            f"shipway: serving {settings['name']!r} on http://{host}:{port}  "
            f"(POST /predict, /predict/batch, /explain; GET /health, /ready, /metrics, /openapi.json)",
            err=True,
        )
        code = run_server(service, settings)
    except ShipwayError as err:
        _fail(err)
    sys.exit(code)


@main.command()
@click.argument("target")
@click.argument("item")
@click.option("--trace", is_flag=True, help="Print every stage's input, output and time.")
def predict(target: str, item: str, trace: bool) -> None:
    """Run ITEM (JSON, or @file.json) through TARGET's pipeline in-process."""
    try:
        service, settings = _load(target, {})
        artifacts = settings.path("artifacts")
        ids = {"service": settings["name"], **read_ids(artifacts, settings["version"] or None)}
        pipeline = service.setup(artifacts, ids)
        raw = Path(item[1:]).read_bytes() if item.startswith("@") else item.encode()
        if trace:
            result = pipeline.trace(raw)
            click.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2, default=str))
            if any(s.error for s in result.stages):
                sys.exit(1)
            return
        click.echo(pipeline.render(pipeline.run(raw)))
    except ShipwayError as err:
        _fail(err)


@main.command()
@click.option("--markdown", is_flag=True, help="Print docs/settings.md instead.")
def settings(markdown: bool) -> None:
    """List every setting with its default, flag and meaning."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    for s in SETTINGS:
        flag = f"  [{s.flag}]" if s.flag else ""
        click.echo(f"{s.key} = {s.default!r}  ({s.type.__name__}){flag}\n    {s.help}")
    for name, text in ENVIRONMENT.items():
        click.echo(f"${name}\n    {text}")
