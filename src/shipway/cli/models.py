"""`shipway models`: register a run's model as a version, move aliases, show lineage (docs/registry.md)."""

from __future__ import annotations

from typing import Any

import click

from shipway.cli.common import echo_json, fail, table
from shipway.cli.data import JSON_HELP, TARGET_HELP, experiment_store, when
from shipway.errors import ShipwayError

__all__ = ["models"]


@click.group()
def models() -> None:
    """The model registry: immutable versions, aliases and their history."""


@models.command()
@click.argument("run")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def register(run: str, target: str, as_json: bool) -> None:
    """Make RUN's model an immutable version, named by the digest of its files."""
    from shipway.registry import register_run

    try:
        with experiment_store(target) as (_, _settings, store, _objects):
            version = register_run(store, run)
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(version.to_dict())
    else:
        dirty = " (from uncommitted code)" if version.dirty else ""
        click.echo(f"model version {version.version} from run {version.run_id}{dirty}")


@models.command()
@click.argument("alias")
@click.argument("version")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--allow-dirty", is_flag=True, help="Let a model from uncommitted code take champion or production.")
@click.option("--note", default=None, help="Why, for the history.")
def alias(alias: str, version: str, target: str, allow_dirty: bool, note: str | None) -> None:
    """Point ALIAS (champion, challenger, any name) at VERSION (a version, or another alias)."""
    from shipway.registry import move_alias

    try:
        with experiment_store(target) as (_, _settings, store, _objects):
            move = move_alias(store, alias, version, allow_dirty=allow_dirty, note=note)
    except ShipwayError as err:
        fail(err, code=1)
    was = f" (was {move.previous})" if move.previous else ""
    click.echo(f"{move.alias} -> {move.version}{was}, by {move.who}")


@models.command("list")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def list_versions(target: str, as_json: bool) -> None:
    """Model versions, newest first, with their aliases."""
    try:
        with experiment_store(target) as (_, _settings, store, _objects):
            versions = store.list_model_versions()
            aliases = store.list_aliases()
    except ShipwayError as err:
        fail(err, code=1)
    named: dict[str, list[str]] = {}
    for name, version in sorted(aliases.items()):
        named.setdefault(version, []).append(name)
    if as_json:
        echo_json([{**v.to_dict(), "aliases": named.get(v.version, [])} for v in versions])
        return
    rows = [
        [
            v.version,
            ", ".join(named.get(v.version, [])),
            v.run_id or "",
            v.dataset_version or "",
            (v.code_commit or "")[:8] + ("+dirty" if v.dirty else ""),
            when(v.created),
            v.created_by,
        ]
        for v in versions
    ]
    click.echo("\n".join(table(["version", "aliases", "run", "data", "commit", "registered", "by"], rows, set())))


@models.command()
@click.argument("name")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def show(name: str, target: str, as_json: bool) -> None:
    """A version (or the one an alias points at): its run, dataset, commit, aliases and deployments."""
    from shipway.registry import resolve

    try:
        with experiment_store(target) as (_, settings, store, _objects):
            version = resolve(store, name)
            history = store.alias_history(version=version.version)
            aliases = sorted(a for a, v in store.list_aliases().items() if v == version.version)
            deployments = [e for e in store.model_history(settings["name"]) if e.version == version.version]
            live = _live(store, settings["name"], version.version, version.created)
    except ShipwayError as err:
        fail(err, code=1)
    data = {
        **version.to_dict(),
        "aliases": aliases,
        "alias_history": [m.to_dict() for m in history],
        "deployments": [{"ts": e.ts, "actor": e.actor, "artifacts": e.source} for e in deployments],
        "live": live,
    }
    if as_json:
        echo_json(data)
        return
    click.echo(f"model version {version.version} (sha256 {version.digest[:16]}...)")
    click.echo(f"  run      {version.run_id}  recipe {version.recipe or ''}  task {version.task or ''}")
    click.echo(f"  dataset  {version.dataset_version}")
    click.echo(f"  commit   {version.code_commit or '(not in git)'}{' (dirty)' if version.dirty else ''}")
    click.echo(f"  aliases  {', '.join(aliases) or 'none'}")
    for key in sorted(version.metrics):
        click.echo(f"  {key} = {version.metrics[key]:g}")
    for move in history:
        click.echo(f"  {when(move.ts)}  {move.alias} -> here (was {move.previous}) by {move.who}")
    for event in deployments:
        click.echo(f"  {when(event.ts)}  deployed by {event.actor} from {event.source}")
    accuracy = "" if live["accuracy"] is None else f", online accuracy {live['accuracy']:.4f}"
    click.echo(
        f"  live     {live['requests']} requests, {live['errors']} errors, {live['labelled']} labelled{accuracy}"
    )


def _live(store: Any, service: str, version: str, since: float) -> dict[str, Any]:
    """The version's figures in the prediction log since it was registered: requests, errors,
    outcomes labelled, and accuracy on them (weighted over hours by labelled outcomes)."""
    from shipway.monitoring.metrics.online import online_metrics

    metrics = online_metrics(store, service, since=since, by="model_version")
    points = [p for s in metrics.series if s["group"].get("model_version") == version for p in s["points"]]
    labelled = sum(int(p["labelled"]) for p in points)
    weighted = [(p["accuracy"], int(p["labelled"])) for p in points if p["accuracy"] is not None]
    weight = sum(n for _, n in weighted)
    return {
        "requests": sum(int(p["requests"]) for p in points),
        "errors": sum(int(p["errors"]) for p in points),
        "labelled": labelled,
        "accuracy": sum(a * n for a, n in weighted) / weight if weight else None,
    }
