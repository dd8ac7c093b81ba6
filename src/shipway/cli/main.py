"""`shipway serve`, `shipway predict`, `shipway manifest` and `shipway settings`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from shipway.cli.annotate import annotate
from shipway.cli.build import build
from shipway.cli.common import fail, open_project
from shipway.cli.data import data
from shipway.cli.deploy import deploy
from shipway.cli.drift import drift
from shipway.cli.export import export, export_jobs
from shipway.cli.feedback import feedback
from shipway.cli.inspect import inspect
from shipway.cli.models import models
from shipway.cli.monitor import alert_jobs, dashboard, dashboard_mounts, monitor
from shipway.cli.new import check, new, update
from shipway.cli.parity import parity
from shipway.cli.recipes import leaderboard, recipes, try_command
from shipway.cli.rollout import rollout, rollout_jobs
from shipway.cli.rules import rules
from shipway.cli.runs import reproduce, runs, train
from shipway.cli.score import score
from shipway.cli.validate import explain, validate
from shipway.core.artifacts import MANIFEST, SIGNATURE, verify_artifacts, write_manifest
from shipway.core.settings import ENVIRONMENT, SETTINGS
from shipway.core.settings_page import settings_markdown
from shipway.errors import ShipwayError
from shipway.project import Project

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


@click.group()
@click.version_option(package_name="shipway")
def main() -> None:
    """shipway: from predict() to a production model service."""


def served_beside(project: Project) -> tuple[list[tuple[float, Callable[[], object]]], dict[str, Any]]:
    """What `shipway serve` runs beside the service in each worker: the alert, rollout and log
    upkeep jobs, and the dashboard mounted at /dashboard, on the project's one store handle."""
    settings, stores = project.settings, project.store
    jobs = (
        alert_jobs(settings, stores) + rollout_jobs(settings, stores) + export_jobs(project.service, settings, stores)
    )
    return jobs, dashboard_mounts(settings, stores)


@main.command()
@click.argument("target", default=".")
@_setting_options
def serve(target: str, **flags: Any) -> None:
    """Serve the service in TARGET (a folder, a service.py, or a module path) over HTTP."""
    from shipway.serving.server import serve as run_server

    try:
        project = open_project(target, flags, gated=True)
        settings = project.settings
        host, port = settings["serve.host"], settings["serve.port"]
        click.echo(
            f"shipway: serving {settings['name']!r} on http://{host}:{port}  "
            f"(POST /predict, /predict/batch, /explain, /feedback; GET /health, /ready, /metrics, /openapi.json"
            + (", /dashboard)" if settings["monitoring.dashboard"] else ")"),
            err=True,
        )
        code = run_server(project, *served_beside(project))
    except ShipwayError as err:
        fail(err)
    sys.exit(code)


@main.command()
@click.argument("target")
@click.argument("item")
@click.option("--trace", is_flag=True, help="Print every stage's input, output and time.")
def predict(target: str, item: str, trace: bool) -> None:
    """Run ITEM (JSON, or @file.json) through TARGET's pipeline in-process: the answer /predict
    gives (the deployed model, the live rules, the service mode)."""
    try:
        project = open_project(target)
        try:
            pipeline = project.pipeline()
        finally:
            project.close()
        raw = Path(item[1:]).read_bytes() if item.startswith("@") else item.encode()
        if trace:
            result = pipeline.trace(raw)
            click.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2, default=str))
            if any(s.error for s in result.stages):
                sys.exit(1)
            return
        click.echo(project.answer(pipeline, raw))
    except ShipwayError as err:
        fail(err)


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@click.option("--verify", is_flag=True, help="Only check FOLDER against its manifest, as every load does.")
def manifest(folder: str, verify: bool) -> None:
    """Write FOLDER/manifest.json: the sha256 of every file in FOLDER, keeping the manifest's other
    fields; signed (manifest.sig) when SHIPWAY_MANIFEST_PRIVATE_KEY or SHIPWAY_MANIFEST_KEY is set.
    Every load checks it first."""
    try:
        if verify:
            verified = verify_artifacts(Path(folder))
            listed = len(verified["files"]) if verified else 0
            click.echo(f"{folder}: {listed} file{'s' if listed != 1 else ''} match {MANIFEST}")
            return
        written = write_manifest(Path(folder))
    except ShipwayError as err:
        fail(err)
    signed = " and signed it" if (Path(folder) / SIGNATURE).exists() else ""
    click.echo(f"wrote {Path(folder) / MANIFEST} ({len(written['files'])} files){signed}")


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


main.add_command(validate)
main.add_command(rules)
main.add_command(deploy)
main.add_command(build)
main.add_command(parity)
main.add_command(explain)
main.add_command(new)
main.add_command(check)
main.add_command(update)
monitor.add_command(drift)
main.add_command(monitor)
main.add_command(dashboard)
main.add_command(feedback)
main.add_command(inspect)
main.add_command(score)
main.add_command(export)
main.add_command(data)
main.add_command(train)
main.add_command(runs)
main.add_command(reproduce)
main.add_command(recipes)
main.add_command(try_command)
main.add_command(leaderboard)
main.add_command(models)
main.add_command(rollout)
main.add_command(annotate)
