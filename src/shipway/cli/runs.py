"""`shipway train`, `shipway runs` and `shipway reproduce` (docs/experiments.md)."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click
import orjson

from shipway.cli.common import echo_json, fail, table
from shipway.cli.data import JSON_HELP, TARGET_HELP, experiment_store, when
from shipway.errors import ConfigError, ShipwayError
from shipway.store.runs import RunRecord

__all__ = ["reproduce", "runs", "train"]

DIRTY = {True: "(dirty: uncommitted changes recorded)", False: "(clean)", None: "(not in git)"}


def _overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not key=value; write it as --set classifier.C=5")
        out[key.strip()] = value
    return out


@click.command()
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a configuration key (repeatable).")
@click.option("--seed", type=int, default=None, help="The seed the training code's run.seed() returns.")
@click.option(
    "--dataset", "dataset_version", default=None, help="Train on this registered dataset version (default: data.dir)."
)
@click.option("--name", default=None, help="A name for the run.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON when it ends.")
def train(
    target: str, sets: tuple[str, ...], seed: int | None, dataset_version: str | None, name: str | None, as_json: bool
) -> None:
    """Run the project's training step (train.command) as a tracked run."""
    from shipway.experiments.training import train as train_run

    try:
        overrides = _overrides(sets)
        with experiment_store(target) as (service, settings, store, objects):
            record = train_run(
                settings,
                service,
                store,
                objects,
                overrides=overrides,
                seeds={"seed": seed} if seed is not None else None,
                dataset_version=dataset_version,
                name=name,
                command=shlex.join(["shipway", *sys.argv[1:]]),
                echo=click.echo if not as_json else lambda line: click.echo(line, err=True),
            )
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(record.to_dict())
    else:
        _summary(record)
    if record.status != "finished":
        sys.exit(1)


def _summary(record: RunRecord) -> None:
    click.echo(f"run {record.id} {record.status} in {record.duration_s or 0:.1f} s (model {record.model_version})")
    if record.error:
        click.echo(f"  error: {record.error}")
    for key, value in record.metrics.items():
        click.echo(f"  {key:<28} {value:.6g}")


@click.group()
def runs() -> None:
    """Tracked runs: list, show, compare."""


@runs.command("list")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="Show at most this many runs.")
@click.option(
    "--status", type=click.Choice(["running", "finished", "failed"]), default=None, help="Only runs with this status."
)
@click.option("--task", default=None, help="Only runs on this task.")
@click.option("--metric", default=None, help="The metric column (default: valid_<data.metric>).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def list_(target: str, limit: int, status: str | None, task: str | None, metric: str | None, as_json: bool) -> None:
    """List runs, newest first."""
    try:
        with experiment_store(target) as (_, settings, store, _):
            records = store.list_runs(project=settings["name"], status=status, task=task, limit=limit)
            metric = metric or f"valid_{settings['data.metric']}"
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json([{k: v for k, v in r.to_dict().items() if k not in ("code", "environment")} for r in records])
        return
    rows = [
        (
            r.id[:12],
            when(r.started),
            r.status,
            "" if r.duration_s is None else f"{r.duration_s:.1f}",
            "" if r.metrics.get(metric) is None else f"{r.metrics[metric]:.4f}",
            (r.dataset_version or "")[:10],
            (r.code_commit or "")[:8] + ("+dirty" if r.dirty else ""),
            r.name or r.recipe or "",
        )
        for r in records
    ]
    headers = ("run", "started (UTC)", "status", "seconds", metric, "dataset", "commit", "name")
    click.echo("\n".join(table(headers, rows, right={3, 4})))


@runs.command()
@click.argument("run_id", metavar="RUN")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--diff", "show_diff", is_flag=True, help="Also print the recorded uncommitted diff.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def show(run_id: str, target: str, show_diff: bool, as_json: bool) -> None:
    """Show RUN (an id or a unique prefix): code, environment, configuration, seeds, data, metrics, artifacts."""
    try:
        with experiment_store(target) as (_, _, store, _):
            record = store.get_run(run_id)
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(record.to_dict())
        return
    _summary(record)
    code = record.code
    click.echo(
        f"  code: commit {code.get('commit')} {DIRTY[record.dirty]}; untracked files {len(code.get('untracked', {}))}"
    )
    env = record.environment
    click.echo(
        f"  environment: Python {env.get('python')} on {env.get('platform')}, {len(env.get('packages', {}))} packages"
    )
    click.echo(
        f"  dataset {record.dataset_version}, task {record.task}; seeds {record.seeds}; overrides {record.overrides}"
    )
    click.echo(f"  command: {record.command}")
    for key, value in record.params.items():
        click.echo(f"  param {key} = {orjson.dumps(value).decode()}")
    for name, ref in record.artifacts.items():
        click.echo(f"  artifact {name}  {ref.size:,} bytes  sha256 {ref.digest[:16]}")
    if show_diff and code.get("diff"):
        click.echo(code["diff"])


@runs.command()
@click.argument("a")
@click.argument("b")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def compare(a: str, b: str, target: str, as_json: bool) -> None:
    """Compare runs A and B: metrics, parameters, code, data, seeds and package versions."""
    from shipway.experiments.compare import compare_runs
    from shipway.experiments.provenance import git

    try:
        with experiment_store(target) as (_, settings, store, _):
            top = git(settings.root, "rev-parse", "--show-toplevel").strip()
            result = compare_runs(store.get_run(a), store.get_run(b), settings.root if top else None)
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"run {result.a[:12]} against {result.b[:12]}")
    sections: list[tuple[str, dict[str, tuple[Any, Any]]]] = [
        ("metric", result.metrics),
        ("parameter", result.params),
        ("data", result.data),
        ("seed", result.seeds),
        ("environment", result.environment),
        ("package", result.packages),
    ]
    rows = [(kind, key, _cell(x), _cell(y)) for kind, values in sections for key, (x, y) in values.items()]
    click.echo("\n".join(table(("", "name", result.a[:12], result.b[:12]), rows, right=set())))
    for key, value in result.code.items():
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        click.echo(f"  code {key}: {text}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Largest absolute metric difference that still matches (0: exactly).",
)
@click.option("--keep", is_flag=True, help="Keep the temporary worktree (its path is printed).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def reproduce(run_id: str, target: str, tolerance: float, keep: bool, as_json: bool) -> None:
    """Run RUN again from its commit, recorded diff, dataset version and seeds; report whether the
    metrics match and every difference of code, data or environment."""
    from shipway.experiments.reproduce import reproduce as reproduce_run

    try:
        with experiment_store(target) as (_, settings, store, objects):
            result = reproduce_run(
                run_id,
                settings.root,
                store,
                objects,
                settings["store.url"],
                tolerance=tolerance,
                keep=keep,
                echo=(lambda line: click.echo(line, err=True)) if as_json else click.echo,
            )
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(result.to_dict())
    else:
        verdict = "match" if result.matches else "DO NOT match"
        how = "exactly" if tolerance == 0 else f"within {tolerance:g}"
        click.echo(f"reproduction {result.run[:12]} of run {result.original[:12]}: the metrics {verdict} ({how})")
        rows = [
            (
                key,
                _cell(m["original"]),
                _cell(m["reproduced"]),
                ("yes" if m["match"] else "NO") if m["compared"] else "(not compared)",
            )
            for key, m in result.metrics.items()
        ]
        click.echo("\n".join(table(("metric", "original", "reproduced", "match"), rows, right={1, 2})))
        for line in result.differences or ["no difference of code, data or environment"]:
            click.echo(f"  {line}")
        for line in result.notes:
            click.echo(f"  note: {line}")
    if not result.matches:
        sys.exit(1)
