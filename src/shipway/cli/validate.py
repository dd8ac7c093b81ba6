"""`shipway validate` and `shipway explain`: parse, call shipway.validation, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from shipway.cli.common import fail
from shipway.errors import ConfigError, ShipwayError

__all__ = ["explain", "validate"]


def _deliveries(deliveries: list[Any]) -> None:
    for d in deliveries:
        if not d.ok:
            click.echo(
                f"warning: could not post the report to {d.url} after {d.attempts} attempts: {d.error}", err=True
            )


@click.command()
@click.argument("suites", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--target",
    "target_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Project folder to run the suites against in-process.",
)
@click.option("--url", help="Run against this live service instead, e.g. http://127.0.0.1:8000.")
@click.option("--junit", "junit", type=click.Path(path_type=Path), help="Write JUnit XML here (for CI).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the report as JSON here.")
@click.option("--every", help="Run on a schedule, e.g. 15m, and report only changes.")
@click.option("--max-runs", type=click.IntRange(min=1), help="With --every: stop after this many runs.")
@click.option(
    "--state",
    "state_file",
    type=click.Path(path_type=Path),
    help="With --every: keep case statuses in this JSON file across restarts.",
)
@click.option(
    "--slack-webhook", envvar="SHIPWAY_SLACK_WEBHOOK", help="Post a summary to this Slack incoming-webhook URL."
)
@click.option("--webhook", envvar="SHIPWAY_VALIDATION_WEBHOOK", help="POST the report as JSON to this URL.")
@click.option(
    "--max-diagnoses",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Diagnose at most this many failing cases per run.",
)
@click.option("-v", "--verbose", is_flag=True, help="List every case, not only those that did not pass.")
def validate(
    suites: tuple[Path, ...],
    target_dir: Path | None,
    url: str | None,
    junit: Path | None,
    json_path: Path | None,
    every: str | None,
    max_runs: int | None,
    state_file: Path | None,
    slack_webhook: str | None,
    webhook: str | None,
    max_diagnoses: int,
    verbose: bool,
) -> None:
    """Run validation SUITES (files or folders; default TARGET/validation/) and report.

    Exits 0 when every case passes (expected failures included), 1 when one fails.
    """
    from shipway.common.times import parse_duration
    from shipway.validation import notify, table, validate, watch, write_json, write_junit
    from shipway.validation.rendering import changes_text
    from shipway.validation.runner import resolve_suites

    def save(report: Any) -> None:
        if junit:
            write_junit(report, junit)
        if json_path:
            write_json(report, json_path)

    try:
        loaded = resolve_suites(suites, target_dir if target_dir is not None else ".")
        if every is None:
            if max_runs is not None or state_file is not None:
                raise click.UsageError("--max-runs and --state go with --every.")
            report = validate(suites=loaded, target_dir=target_dir, url=url, max_diagnoses=max_diagnoses)
            click.echo(table(report, verbose=verbose))
            save(report)
            _deliveries(notify(report, slack=slack_webhook, webhook=webhook))
            sys.exit(0 if report.ok else 1)

        def run() -> Any:
            return validate(suites=loaded, target_dir=target_dir, url=url, max_diagnoses=max_diagnoses)

        def on_run(report: Any, changes: Any, n: int) -> None:
            click.echo(changes_text(report, changes, n))
            save(report)
            if changes:
                _deliveries(notify(report, slack=slack_webhook, webhook=webhook, changes=changes))

        try:
            every_s = parse_duration(every, "--every", bare_seconds=True)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        last = watch(run, every_s, on_run, max_runs=max_runs, state_file=state_file, description=url or "the service")
        sys.exit(0 if last is None or last.ok else 1)
    except ShipwayError as err:
        fail(err)


@click.command()
@click.argument("target")
@click.argument("item")
@click.option(
    "--expect", help='The expected label, or a JSON expectation like \'{"label_in_top_k": {"label": "x", "k": 3}}\'.'
)
@click.option("--fields", "fields", help='JSON fields mapping, e.g. \'{"label": "intent"}\' (see docs/validation.md).')
@click.option("--json", "as_json", is_flag=True, help="Print the trace and the diagnosis as JSON.")
def explain(target: str, item: str, expect: str | None, fields: str | None, as_json: bool) -> None:
    """Trace ITEM (JSON, or @file.json) through TARGET's pipeline; with --expect, say why it is not met.

    Exits 1 when the expectation is not met.
    """
    from shipway.expect.fields import shorten
    from shipway.validation import explain as explain_item
    from shipway.validation import load_pipeline

    try:
        pipeline = load_pipeline(target)
        raw = Path(item[1:]).read_bytes() if item.startswith("@") else item.encode()
        trace = pipeline.trace(raw).to_dict()
        result = explain_item(pipeline, raw, expect, fields, trace) if expect else None
    except ShipwayError as err:
        fail(err)
    if as_json:
        click.echo(orjson.dumps({**trace, "expect": result}, option=orjson.OPT_INDENT_2, default=str))
    else:
        for record in trace["stages"]:
            error = f"  ERROR {record['error']}" if record["error"] else ""
            click.echo(
                f"{record['stage']:>12} ({record['kind']}) {record['ms']:8.3f} ms  {shorten(record['output'], 90)}{error}"
            )
        _echo_answer(trace)
        if result is not None:
            click.echo("")
            for check in result["checks"]:
                click.echo(f"{'pass' if check['passed'] else 'FAIL'}  {check['expectation']}: {check['message']}")
            if result["diagnosis"]:
                from shipway.validation import Diagnosis

                for line in Diagnosis.from_dict(result["diagnosis"]).lines():
                    click.echo(line)
    if result is not None and not result["passed"]:
        sys.exit(1)


def _echo_answer(trace: dict[str, Any], row: int = 90, most: int = 50) -> None:
    """The answer in full when the trace's row had to cut it (a ranking, a long text): a line per
    field, and a numbered line per entry of a list, each entry as compact JSON."""
    stages = trace["stages"]
    if not stages or stages[-1]["error"]:
        return
    answer = stages[-1]["output"]
    if len(str(answer)) <= row:
        return

    def compact(value: Any) -> str:
        return orjson.dumps(value, default=str).decode()

    click.echo("\nanswer:")
    for key, value in answer.items() if isinstance(answer, dict) else [("", answer)]:
        name = f"{key}: " if key else ""
        if not isinstance(value, list):
            click.echo(f"  {name}{compact(value)}")
            continue
        click.echo(f"  {name}{len(value)} entr{'y' if len(value) == 1 else 'ies'}")
        for n, entry in enumerate(value[:most], 1):
            click.echo(f"    {n:>3}. {compact(entry)}")
        if len(value) > most:
            click.echo(f"    ... {len(value) - most} more (--json prints them all)")
