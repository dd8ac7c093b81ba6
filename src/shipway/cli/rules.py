"""`shipway rules`: check, apply, roll back, list and backtest the rules of a service."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import httpx
import orjson

from shipway.cli.common import fail, open_project
from shipway.cli.monitor import export_dir
from shipway.cli.rules_view import render, render_comparison
from shipway.common.times import TIME_HELP
from shipway.engine import ENGINES, Source, run
from shipway.errors import ShipwayError
from shipway.experiments.backtest import BacktestJob, backtest, merged, replay
from shipway.project import Project
from shipway.registry import who
from shipway.rules import RuleSet
from shipway.rules.comparison import compare_rules
from shipway.rules.lifecycle import MODES, RulesManager
from shipway.rules.live import LiveRules
from shipway.serving.admin import TOKEN_ENV
from shipway.store.columnar import log_files, logged_records, read_state, window_parts
from shipway.store.feedback import recorded_outcomes
from shipway.store.outcomes import reader_of

if TYPE_CHECKING:
    from shipway.store.provider import StoreProvider

__all__ = ["rules"]

TARGET_HELP = "The service's project folder, service.py or module (default: this folder)."
URL_HELP = (
    f"A running service to act on, e.g. http://127.0.0.1:8000 (needs ${TOKEN_ENV}); without it, the project's store."
)


@click.group()
def rules() -> None:
    """Rules over model outputs (docs/rules.md)."""


def _manager(target: str) -> RulesManager:
    return _project(target)[0]


def _project(target: str, gated: bool = False) -> tuple[RulesManager, Project]:
    project = open_project(target, gated=gated)
    artifacts, _ = project.serving_artifacts()  # the model serving runs, its ids as serving gives them
    manager = project.rules_manager(artifacts)
    if project.gate is not None:

        def gate_rules(ruleset: RuleSet) -> None:
            # The candidate runs here, in this process, on the model serving runs; a pass says what ran.
            passed = project.check_rules(project.build(LiveRules(), artifacts), ruleset)
            if passed is not None:
                click.echo(f"validation gate: {passed.summary}")

        manager.gate = gate_rules
    return manager, project


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", default=".", help=TARGET_HELP)
def check(file: str, target: str) -> None:
    """Check FILE against the service's schemas and labels; print every problem with file:line:col."""
    try:
        with open(file, encoding="utf-8") as fh:
            ruleset = _manager(target).compile(fh.read(), file)
    except ShipwayError as err:
        fail(err, code=1)
    for warning in ruleset.warnings:
        click.echo(str(warning))
    click.echo(f"ok: {file} version {ruleset.version}, {len(ruleset.names)} rules and tables")


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--url", default=None, help=URL_HELP)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="on",
    show_default=True,
    help="on: live; shadow: decide and log beside the live rules; canary: live for a share; off: no rules.",
)
@click.option("--canary", type=float, default=None, help="With --mode canary: the share of requests, 0 to 1.")
@click.option(
    "--canary-key",
    default=None,
    help="With --mode canary: the field that keeps a caller in one group, e.g. input.customer_id.",
)
@click.option(
    "--actor", default=None, help="Who applies it, for the history (default: $SHIPWAY_ACTOR, else your login name)."
)
@click.option(
    "--gate/--no-gate",
    default=True,
    show_default=True,
    help="Without --url: refuse the rules unless the project's validation suites pass with them.",
)
def apply(
    file: str,
    target: str,
    url: str | None,
    mode: str,
    canary: float | None,
    canary_key: str | None,
    actor: str | None,
    gate: bool,
) -> None:
    """Check FILE and make it the service's rules: every worker swaps within rules.poll_s."""
    with open(file, encoding="utf-8") as fh:
        source = fh.read()
    actor = actor or who()
    try:
        if url:
            body = {
                "source": source,
                "mode": mode,
                "canary": canary,
                "canary_key": canary_key,
                "actor": actor,
                "filename": file,
            }
            result = admin_request(url, "POST", "/admin/rules", body)
            event, warnings = result["applied"], result["warnings"]
        else:
            applied, ruleset = _project(target, gated=gate)[0].apply(
                source, mode=mode, canary=canary, canary_key=canary_key, actor=actor, filename=file
            )
            event = {"version": applied.version, "options": applied.options}
            warnings = [str(w) for w in ruleset.warnings]
    except ShipwayError as err:
        fail(err, code=1)
    for warning in warnings:
        click.echo(warning)
    click.echo(f"applied rules version {event['version']} ({event['options'].get('mode', 'on')})")


@rules.command()
@click.argument("version", required=False)
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--url", default=None, help=URL_HELP)
@click.option(
    "--actor", default=None, help="Who rolls back, for the history (default: $SHIPWAY_ACTOR, else your login name)."
)
def rollback(version: str | None, target: str, url: str | None, actor: str | None) -> None:
    """Make VERSION (default: the live version before the current one) the live rules again."""
    actor = actor or who()
    try:
        if url:
            event = admin_request(url, "POST", "/admin/rules/rollback", {"version": version, "actor": actor})["applied"]
            version = event["version"]
        else:
            version = _manager(target).rollback(version, actor).version
    except ShipwayError as err:
        fail(err, code=1)
    click.echo(f"rolled back to rules version {version}")


@rules.command()
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--url", default=None, help=URL_HELP)
@click.option("--limit", default=20, show_default=True, help="How many events to list.")
def history(target: str, url: str | None, limit: int) -> None:
    """List the service's rules history, newest first."""
    try:
        if url:
            events = admin_request(url, "GET", "/admin/rules", None)["history"][:limit]
        else:
            events = [
                {
                    "id": e.id,
                    "version": e.version,
                    "action": e.action,
                    "ts": e.ts,
                    "actor": e.actor,
                    "options": e.options,
                }
                for e in _manager(target).history(limit)
            ]
    except ShipwayError as err:
        fail(err, code=1)
    for e in events:
        when = datetime.fromtimestamp(e["ts"]).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{e['id']:>5}  {when}  {e['action']:<8}  {e['version']:<28}  {e['options'].get('mode', 'on'):<7}  {e['actor'] or ''}"
        )


@rules.command(name="backtest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--since", default="7d", show_default=True, help=f"Start of the window: {TIME_HELP}.")
@click.option("--until", default=None, help=f"End of the window: {TIME_HELP}. Default: now.")
@click.option("--examples", default=3, show_default=True, help="Examples kept per change.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--log",
    "log_path",
    type=click.Path(exists=True),
    help="Replay the log exported as Parquet (a file or folder) instead of the store's.",
)
@click.option(
    "--engine", type=click.Choice(ENGINES), default="local", show_default=True, help="With --log: local or ray."
)
@click.option("--jobs", default=1, show_default=True, help="With --log: worker processes (local) or actors (ray).")
def backtest_command(
    file: str,
    target: str,
    since: str,
    until: str | None,
    examples: int,
    as_json: bool,
    log_path: str | None,
    engine: str,
    jobs: int,
) -> None:
    """Replay logged predictions through the current rules and FILE; report what changes."""
    try:
        manager, project = _project(target)
        try:
            settings = project.settings
            with open(file, encoding="utf-8") as fh:
                source = fh.read()
            proposed = manager.compile(source, file)
            current = manager.load()  # what serves now: live rules, and shadow or canary rules beside them
            low, high = parse_when(since), parse_when(until, "--until") if until else time.time()
            reader = reader_of(settings)
            outcomes = _outcomes(project, low, high)
            if log_path:
                input_schema, output_schema = project.service.schemas()
                live, candidate = current.live, current.candidate
                job = BacktestJob(
                    (source, file),
                    (live.source, f"rules {live.version}") if live is not None else None,
                    input_schema.json_schema(),
                    output_schema.json_schema(),
                    labels=project.labels(),
                    examples=examples,
                    since=low,
                    until=high if until else None,
                    service=settings["name"],
                    candidate=(candidate.source, f"rules {candidate.version}") if candidate is not None else None,
                    candidate_options={
                        "mode": current.candidate_mode,
                        "canary": current.canary,
                        "canary_key": current.canary_key,
                    },
                    outcomes=outcomes,
                    reader=reader,
                )
                logged = log_source(log_path, job.since, job.until, job.columns(), project.store, settings["name"])
                if logged is None:  # the export holds no day of the window
                    report = replay([], current, proposed, examples=examples, outcomes=outcomes, reader=reader)
                else:
                    report = merged(run(job, logged, engine=engine, jobs=jobs, batch_size=65536))
            else:
                records = logged_records(
                    project.store.get(),
                    export_dir(settings),
                    service=settings["name"],
                    since=low,
                    until=high if until else None,
                )
                report = backtest(records, current, proposed, examples=examples, outcomes=outcomes, reader=reader)
        finally:
            project.close()
    except ShipwayError as err:
        fail(err, code=1)
    click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() if as_json else render(report))


@rules.command(name="compare")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--since", default="24h", show_default=True, help=f"Start of the window: {TIME_HELP}.")
@click.option("--until", default=None, help=f"End of the window: {TIME_HELP}. Default: now.")
@click.option("--shadow", "shadow", default=None, help="The shadow rules version (default: the one that decided most).")
@click.option("--examples", default=3, show_default=True, help="Example requests kept per change.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_command(
    target: str, since: str, until: str | None, shadow: str | None, examples: int, as_json: bool
) -> None:
    """Compare the shadow (or canary) rules with the live rules over the logged traffic: where
    their decisions differ, and how each scores on the feedback that came back."""
    try:
        project = open_project(target)
        settings = project.settings
        low, high = parse_when(since), parse_when(until, "--until") if until else time.time()
        try:
            store = project.store.get()
            records = logged_records(store, export_dir(settings), service=settings["name"], since=low, until=high)
            result = compare_rules(
                store,
                settings["name"],
                since=low,
                until=high,
                records=records,
                shadow=shadow,
                reader=reader_of(settings),
                examples=examples,
            )
        finally:
            project.close()
    except ShipwayError as err:
        fail(err, code=1)
    data = result.to_dict()
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() if as_json else render_comparison(data))


def log_source(
    path: str,
    since: float | None,
    until: float | None,
    columns: tuple[str, ...],
    stores: StoreProvider | None = None,
    service: str | None = None,
) -> Source | None:
    """The logged rows of `path`: an export folder (its committed files of the window's days,
    docs/analysis.md; None when it has none), a folder of Parquet files, or one file.

    With `stores`, when `path` is the export of that store: the window's rows the files lack too
    (`window_parts`: the entries logged since the export's last run), read here, so that a job
    sees the rows a read of the store sees. A PostgreSQL store that is down stops the job
    (StoreUnavailable) rather than leave out the tail; a SQLite store that does not exist has none."""
    root = Path(path)
    state = read_state(root) if root.is_dir() else None
    store = None
    if state is not None and stores is not None:
        store = stores.existing() or (None if stores.url.startswith("sqlite") else stores.get())
    if state is not None and store is not None and state.store == store.url:
        files, tail = window_parts(store, root, service, since, until)
        return Source.parquet(files, columns, tail=tail) if files or tail.num_rows else None
    if state is not None:
        files = log_files(root, state, since, until)
        return Source.parquet(files, columns) if files else None
    return Source.open(root).selecting(columns)


def _outcomes(project: Project, since: float, until: float) -> dict[str, dict[str, Any]] | None:
    """The outcomes that came back for the window's predictions, to score on; None without a store."""
    store = project.store.existing()  # a backtest never creates a store
    return None if store is None else recorded_outcomes(store, project.name, since, until)


def parse_when(text: str, what: str = "--since") -> float:
    """`shipway.common.times.parse_time` now, its errors as a usage error."""
    from shipway.common.times import parse_time

    try:
        return parse_time(text, time.time(), what)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint=what) from None


def admin_request(url: str, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        fail(f"set {TOKEN_ENV} to the service's admin token to act on {url}", code=1)
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, json=body, timeout=30, headers={"authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as err:
        fail(f"cannot reach {url}: {err}", code=1)
    data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        fail(data.get("error", {}).get("message", response.text), code=1)
    return data  # type: ignore[no-any-return]
