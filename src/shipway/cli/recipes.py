"""`shipway recipes`, `shipway try` and `shipway leaderboard` (docs/recipes.md)."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from shipway.cli.common import echo_json, fail, table
from shipway.cli.data import JSON_HELP, TARGET_HELP, experiment_store
from shipway.errors import ConfigError, ShipwayError

__all__ = ["leaderboard", "recipes", "try_command"]


@click.command()
@click.argument("name", required=False)
@click.option("--target", default=".", help=TARGET_HELP)
def recipes(name: str | None, target: str) -> None:
    """List the recipes (built in, and the project's recipes/ folder), or show one's parameters."""
    from pathlib import Path

    from shipway.recipes import catalog, get

    project = Path(target)
    try:
        if name is None:
            rows = []
            for recipe_name in catalog(project):
                recipe = get(recipe_name, project)
                rows.append([recipe_name, ", ".join(recipe.kinds), recipe.summary, recipe.extra or ""])
            click.echo("\n".join(table(["recipe", "kinds", "what", "extra"], rows, set())))
            return
        recipe = get(name, project)
    except ShipwayError as err:
        fail(err, code=2)
    click.echo(f"{recipe.name}: {recipe.summary}")
    click.echo(f"  kinds: {', '.join(recipe.kinds)}; install: pip install 'shipway[{recipe.extra}]'")
    rows = [[p.name, repr(p.default), p.help] for p in recipe.params]
    click.echo("\n".join(table(["parameter", "default", "what"], rows, set())))


def _trials(names: tuple[str, ...], sets: tuple[str, ...]) -> list[Any]:
    from shipway.experiments.trying import Trial

    params: dict[str, dict[str, str]] = {name: {} for name in names}
    for pair in sets:
        key, sep, value = pair.partition("=")
        recipe, dot, param = key.partition(".")
        if not sep or not dot or recipe not in params:
            raise ConfigError(
                f"--set {pair!r} is not RECIPE.PARAMETER=VALUE for one of the recipes tried ({', '.join(names)}); "
                "write it as --set minilm-lr.C=5"
            )
        params[recipe][param] = value
    return [Trial(name, params[name]) for name in names]


@click.command("try")
@click.argument("names", nargs=-1, required=True, metavar="RECIPE...")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True, help="Seeds per recipe (0, 1, ...).")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True, help="Fits run at once, in processes.")
@click.option("--set", "sets", multiple=True, metavar="RECIPE.PARAM=VALUE", help="Override a recipe's parameter.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON at the end.")
def try_command(
    names: tuple[str, ...], target: str, seeds: int, jobs: int, sets: tuple[str, ...], as_json: bool
) -> None:
    """Train RECIPE... on the project's task, each seed a tracked run; progress on stderr."""
    from shipway.experiments.trying import try_recipes

    try:
        trials = _trials(names, sets)
        with experiment_store(target) as (service, settings, store, objects):
            records = try_recipes(
                settings,
                service,
                store,
                objects,
                trials,
                seeds=seeds,
                jobs=jobs,
                command=shlex.join(["shipway", *sys.argv[1:]]),
                echo=lambda line: click.echo(line, err=True),
            )
    except ShipwayError as err:
        fail(err, code=2)
    if as_json:
        echo_json([r.to_dict() for r in records])
    else:
        failed = [r for r in records if r.status != "finished"]
        click.echo(
            f"{len(records) - len(failed)} runs finished, {len(failed)} failed; `shipway leaderboard` ranks them"
        )
    if any(r.status != "finished" for r in records):
        sys.exit(1)


@click.command()
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--task", default=None, help="The task to rank (default: the task of the dataset in data.dir).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def leaderboard(target: str, task: str | None, as_json: bool) -> None:
    """Rank the runs of a task: score over seeds, fit time, latency, size, data, commit, reproduced."""
    from shipway.experiments.leaderboard import task_leaderboard

    try:
        with experiment_store(target) as (service, settings, store, objects):
            name, rows = task_leaderboard(settings, service, store, objects, task)
    except ShipwayError as err:
        fail(err, code=2)
    if as_json:
        echo_json({"task": name, "rows": [r.to_dict() for r in rows]})
        return
    click.echo(f"task {name}")
    lines = []
    for rank, row in enumerate(rows, 1):
        lines.append([rank, row.name + (" (reference)" if row.reference else ""), *row.cells()])
    metric = rows[0].metric if rows else "score"
    headers = [
        "#",
        "recipe",
        "seeds",
        f"valid {metric}",
        f"test {metric}",
        "fit s",
        "ms/item",
        "MB",
        "data",
        "commit",
        "reproduced",
    ]
    click.echo("\n".join(table(headers, lines, {0, 2, 3, 4, 5, 6, 7})))
