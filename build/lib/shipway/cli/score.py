"""`shipway score`: a dataset through the project's pipeline, rules included, into Parquet."""

from __future__ import annotations

import sys
import time

import click
import orjson

from shipway.cli.common import fail
from shipway.engine import ENGINES
from shipway.errors import ShipwayError

__all__ = ["score"]


@click.command()
@click.argument("data", type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The Parquet file to write.")
@click.option("--target", default=".", help="The project folder, service.py or module (default: this folder).")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Score with this rules file instead of rules.file.",
)
@click.option("--no-rules", is_flag=True, help="Score with the model alone: no rules stage, no decision.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    help="The format of DATA (default: from its extension).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="local: this machine; ray: a Ray cluster (pip install 'shipway[ray]').",
)
@click.option(
    "--jobs", default=1, show_default=True, help="Worker processes (local) or actors (ray), each with its own model."
)
@click.option("--batch-size", default=1024, show_default=True, help="Rows per call of predict_batch.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def score(
    data: str,
    out: str,
    target: str,
    rules_file: str | None,
    no_rules: bool,
    fmt: str | None,
    engine: str,
    jobs: int,
    batch_size: int,
    as_json: bool,
) -> None:
    """Score every row of DATA (CSV, JSON Lines or Parquet) with the project's pipeline; write Parquet."""
    from shipway.scoring import score as run_score  # pyarrow is an extra: import it only here

    if no_rules and rules_file:
        fail("--rules and --no-rules contradict each other; pass one of them.")
    progress = _Progress()
    try:
        summary = run_score(
            target,
            data,
            out,
            rules=False if no_rules else (rules_file or True),
            format=fmt,
            engine=engine,
            jobs=jobs,
            batch_size=batch_size,
            progress=progress,
        )
    except ShipwayError as err:
        fail(err)
    progress.done()
    if as_json:
        click.echo(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    ids = ", ".join(f"{k} {v}" for k, v in summary.ids.items() if v)
    click.echo(
        f"scored {summary.rows} rows into {summary.out} in {summary.seconds:.1f} s "
        f"({summary.rows / max(summary.seconds, 1e-9):,.0f} rows/s); {summary.errors} rows failed "
        f"(their reason is in the error column)\n{ids}"
    )


class _Progress:
    """A line on stderr about once a second: rows scored, rows failed, rows per second."""

    def __init__(self) -> None:
        self.started = self.shown = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.line = ""

    def __call__(self, rows: int, errors: int) -> None:
        now = time.perf_counter()
        if now - self.shown < 1.0:
            return
        self.shown = now
        self.line = f"scored {rows:,} rows, {errors:,} failed, {rows / (now - self.started):,.0f} rows/s"
        click.echo(("\r" + self.line) if self.tty else self.line, err=True, nl=not self.tty)

    def done(self) -> None:
        if self.tty and self.line:
            click.echo("", err=True)
