"""`shipway monitor drift`: the drift of a window of logged traffic against the reference
profile, here (from the store, or its Parquet export) or on an offline engine (local worker
processes, Ray) as summaries that merge (docs/drift.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from shipway.cli.common import fail
from shipway.cli.monitor import export_dir, project_settings
from shipway.cli.rules import log_source, parse_when
from shipway.common.times import TIME_HELP
from shipway.engine import ENGINES
from shipway.errors import DriftError, ShipwayError

if TYPE_CHECKING:
    from shipway.core.settings import Settings
    from shipway.monitoring.drift.comparison import DriftReport

__all__ = ["drift"]


@click.command("drift")
@click.argument("target", default=".")
@click.option("--since", default="1d", show_default=True, help=f"Start of the window: {TIME_HELP}.")
@click.option("--until", default=None, help=f"End of the window: {TIME_HELP}. Default: now.")
@click.option("--store", "store_url", help="The store to read, e.g. postgresql://... Default: store.url.")
@click.option(
    "--log",
    "log_path",
    type=click.Path(exists=True),
    help="Summarise the log exported as Parquet (its folder, or a file) instead of reading the store; "
    "an export of the project's store is read with the entries logged since its last run. "
    "Default with --engine ray or --jobs: export.dir.",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="Where the exported log is summarised: local (this process or --jobs processes) or ray.",
)
@click.option("--jobs", default=1, show_default=True, help="Worker processes (local) or actors (ray).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (its shape: docs/drift.md).")
def drift(
    target: str,
    since: str,
    until: str | None,
    store_url: str | None,
    log_path: str | None,
    engine: str,
    jobs: int,
    as_json: bool,
) -> None:
    """Compare the predictions of the service in TARGET logged over a window with its reference
    profile (artifacts/profile.json): every feature's verdicts, and whether the window drifted.

    Without --log, --engine ray or --jobs, the window is read from the store (through the Parquet
    export when it covers the window, export.read). Otherwise the export's files are summarised
    in parts that merge, with the entries the store logged since the last `shipway export` read
    here as one more part: the same rows either way."""
    try:
        settings = project_settings(target, {"store.url": store_url})
        start = parse_when(since)
        end = parse_when(until, "--until") if until else None
        if log_path is None and engine == "local" and jobs == 1:
            report = _from_store(settings, start, end)
        else:
            report = _from_export(settings, Path(log_path) if log_path else None, start, end, engine, jobs)
    except ShipwayError as err:
        fail(err)
    if as_json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        click.echo(render(report))


def _profile_path(settings: Settings) -> Path:
    path = settings.path("artifacts") / "profile.json"
    if not path.is_file():
        raise DriftError(
            f"there is no reference profile at {path}: training writes it (Profile.build(...).save(artifacts), "
            "docs/drift.md); train the model, or point `artifacts` in shipway.toml at the folder that holds it."
        )
    return path


def _from_store(settings: Settings, since: float, until: float | None) -> DriftReport:
    from shipway.monitoring.drift.comparison import compare
    from shipway.monitoring.drift.profile import Profile
    from shipway.monitoring.drift.thresholds import Thresholds
    from shipway.monitoring.drift.window import window_from_store
    from shipway.store import open_store

    profile = Profile.load(_profile_path(settings))
    with open_store(settings["store.url"], settings.root) as store:
        window = window_from_store(
            store, service=settings["name"], since=since, until=until, profile=profile, export=export_dir(settings)
        )
    return compare(profile, window, Thresholds.from_settings(settings), embed=settings["monitoring.drift.embedder"])


def _from_export(
    settings: Settings, log: Path | None, since: float, until: float | None, engine: str, jobs: int
) -> DriftReport:
    from shipway.engine import run
    from shipway.monitoring.drift.comparison import compare_summary
    from shipway.monitoring.drift.job import DriftJob, merged
    from shipway.monitoring.drift.profile import Profile
    from shipway.monitoring.drift.thresholds import Thresholds
    from shipway.store.provider import StoreProvider

    path = _profile_path(settings)
    log = log or settings.path("export.dir")
    if not log.exists():
        raise DriftError(f"there is no exported log at {log}: run `shipway export` first, or pass --log FOLDER.")
    job = DriftJob(str(path), since=since, until=until, service=settings["name"])
    # The store's entries logged since the export's last run are read here, by this process, and
    # summarised as one more block: the same rows as a read of the store (_from_store).
    stores = StoreProvider(settings["store.url"], settings.root)
    try:
        source = log_source(str(log), since, until, DriftJob.COLUMNS, stores, settings["name"])
    finally:
        stores.close()
    if source is None:
        raise DriftError(f"the export in {log} holds no day of the window; widen --since or run `shipway export`.")
    summary = merged(run(job, source, engine=engine, jobs=jobs, batch_size=65536))
    return compare_summary(Profile.load(path), summary, Thresholds.from_settings(settings))


def render(report: DriftReport) -> str:
    s = report.summary()
    window = report.window
    lines = [
        f"{window['n_rows']:,} predictions compared with the reference: "
        f"{s['n_drifted']} of {s['n_features']} features drifted "
        f"({'dataset drift' if s['dataset_drift'] else 'no dataset drift'} at a share of {s['drift_share']:g})",
    ]
    if window["excluded"]:
        lines.append("left out: " + ", ".join(f"{n:,} ({why})" for why, n in window["excluded"].items()))
    lines.append(f"{'feature':<28} {'method':<16} {'value':>10} {'threshold':>10}  verdict")
    for r in report.results:
        value = "" if r.value is None else f"{r.value:.4g}"
        verdict = "drift" if r.drifted else "no verdict" if r.drifted is None else "ok"
        note = f"  ({r.note})" if r.note else ""
        lines.append(f"{r.feature:<28} {r.method:<16} {value:>10} {r.threshold:>10g}  {verdict}{note}")
    return "\n".join(lines)
