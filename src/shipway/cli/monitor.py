"""`shipway monitor`: watching the live service. Each command is its own function below."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from shipway.cli.common import fail
from shipway.common.times import TIME_HELP
from shipway.core.settings import Settings, load_settings
from shipway.errors import ShipwayError, StoreError

if TYPE_CHECKING:
    from shipway.monitoring.alerts.alerter import Alerter
    from shipway.monitoring.dashboard import Dashboard
    from shipway.store.provider import StoreProvider

__all__ = [
    "alert_jobs",
    "dashboard",
    "dashboard_mounts",
    "monitor",
    "project_alerter",
    "project_dashboard",
    "project_settings",
]


@click.group()
def monitor() -> None:
    """Watch the live service: alerts, reports and the dashboard."""


def project_settings(target: str, overrides: dict[str, Any] | None = None) -> Settings:
    """The settings of the project in TARGET (a folder or its service.py), without importing the service."""
    path = Path(target)
    root = path if path.is_dir() else (path.parent if path.suffix == ".py" else Path.cwd())
    return load_settings(root, overrides)


def export_dir(settings: Settings) -> Path | None:
    """The log's Parquet export to read wide windows from (export.read), None when off."""
    return settings.path("export.dir") if settings["export.read"] else None


# -- alerts ---------------------------------------------------------------------------


def project_alerter(settings: Settings, stores: StoreProvider | None = None) -> Alerter | None:
    """The project's alert rules, ready to evaluate (None when it has no alerts file), on the
    process's store provider when given (`shipway serve`), else on a handle of its own.

    Raises AlertError when the file has problems. Nothing is opened until the first evaluation.
    """
    path = settings.path("monitoring.alerts_file")
    if not path.is_file():
        return None
    from shipway.monitoring.alerts.alert_file import load_alerts
    from shipway.monitoring.alerts.alerter import Alerter

    rules = load_alerts(path)
    for warning in rules.warnings:
        click.echo(f"warning: {warning}", err=True)
    drift_options: dict[str, Any] = {}
    if rules.uses_drift:
        from shipway.monitoring.drift.thresholds import Thresholds

        drift_options = {
            "thresholds": Thresholds.from_settings(settings),
            "embed": settings["monitoring.drift.embedder"],
        }
    return Alerter(
        rules,
        settings["name"],
        stores if stores is not None else settings["store.url"],
        base_dir=settings.root,
        dashboard_url=settings["monitoring.dashboard_url"],
        profile=settings.path("artifacts") / "profile.json",
        drift_options=drift_options,
        export=export_dir(settings),
    )


def alert_jobs(settings: Settings, stores: StoreProvider | None = None) -> list[tuple[float, Callable[[], object]]]:
    """What `shipway serve` runs in each worker for alerts: [] without rules or with
    `monitoring.alerts_in_serve = false`. The serving layer gets a plain callable; `stores` is
    the process's store provider (the project's), shared with everything else in the worker."""
    if not settings["monitoring.alerts_in_serve"]:
        return []
    alerter = project_alerter(settings, stores)
    return [] if alerter is None else [(settings["monitoring.alerts_every_s"], alerter)]


def _seconds(text: str) -> float:
    from shipway.common.times import parse_duration

    try:
        return parse_duration(text, "--every", bare_seconds=True)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--every") from None


@monitor.command("alerts")
@click.argument("target", default=".")
@click.option("--every", help="Evaluate on this schedule, e.g. 30s, 5m. Default: monitoring.alerts_every_s.")
@click.option("--once", is_flag=True, help="Evaluate once, print every rule's state and exit: 1 if one is firing.")
@click.option("--store", "store_url", help="The store to read, e.g. postgresql://... Default: store.url.")
@click.option("--json", "as_json", is_flag=True, help="Print each evaluation as one JSON object per line.")
def alerts(target: str, every: str | None, once: bool, store_url: str | None, as_json: bool) -> None:
    """Evaluate the alert rules of the project in TARGET (default: here) against the store.

    Runs until stopped, printing every rule's state the first time and then only changes;
    a rule that starts firing or recovers is sent to its channels once (docs/alerts.md).
    """
    if once and every is not None:
        raise click.UsageError("--every and --once do not go together: --once evaluates once and exits.")
    try:
        settings = project_settings(target, {"store.url": store_url})
        alerter = project_alerter(settings)
        if alerter is None:
            path = settings.path("monitoring.alerts_file")
            raise ShipwayError(
                f"no alert rules: {path} does not exist. Write one (docs/alerts.md has the format), "
                "or point monitoring.alerts_file at yours."
            )
        interval = _seconds(every) if every is not None else settings["monitoring.alerts_every_s"]
    except ShipwayError as err:
        fail(err)

    errors: dict[str, str] = {}  # a rule's error is printed when it appears or changes, not every round

    def show(evaluations: list[Any], everything: bool) -> None:
        for e in evaluations:
            new_error = e.state == "error" and errors.get(e.rule.name) != e.reason
            if everything or e.changed or new_error:
                click.echo(orjson.dumps(e.to_dict()).decode() if as_json else f"{_stamp()} {e.line()}")
            if e.state == "error":
                errors[e.rule.name] = e.reason
            else:
                errors.pop(e.rule.name, None)

    try:
        if once:
            evaluations = alerter.evaluate()
            show(evaluations, True)
            sys.exit(1 if any(e.state == "firing" for e in evaluations) else 0)
        click.echo(
            f"shipway: evaluating {len(alerter.rules.rules)} alert rules every {interval:g} s; Ctrl-C stops.", err=True
        )
        first = True
        while True:
            started = time.monotonic()
            try:
                show(alerter.evaluate(), first)
                first = False
            except StoreError as err:  # the store may come back; the next round tries again
                click.echo(f"{_stamp()} warning: could not evaluate the alerts: {err}", err=True)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except ShipwayError as err:
        fail(err)
    except KeyboardInterrupt:
        pass
    finally:
        alerter.close()


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


# -- the dashboard and the report ---------------------------------------------------


def project_dashboard(settings: Settings, stores: StoreProvider | None = None) -> Dashboard:
    """The project's dashboard, not yet connected: the store opens on the first request (the
    process's provider when given, as `shipway serve` gives it, else a handle of its own).

    The CLI layer hands monitoring what it cannot import itself: the validation report
    that `shipway validate --json` wrote (monitoring.validation_report), and the output
    fields that hold the label and confidence (monitoring.label_field and the others).
    """
    from shipway.monitoring.dashboard import Dashboard
    from shipway.monitoring.drift.thresholds import Thresholds
    from shipway.store.outcomes import reader_of

    return Dashboard(
        stores if stores is not None else settings["store.url"],
        settings["name"],
        base_dir=settings.root,
        describe=reader_of(settings),
        profile=settings.path("artifacts") / "profile.json",
        validation=settings.path("monitoring.validation_report"),
        drift_options={
            "thresholds": Thresholds.from_settings(settings),
            "embed": settings["monitoring.drift.embedder"],
        },
        export=export_dir(settings),
        refresh_s=settings["monitoring.dashboard_refresh_s"],
    )


def dashboard_mounts(settings: Settings, stores: StoreProvider | None = None) -> dict[str, Any]:
    """What `shipway serve` mounts beside the service: the dashboard at /dashboard, unless
    `monitoring.dashboard = false`, on the process's store provider. The serving layer gets
    plain ASGI apps by path prefix."""
    if not settings["monitoring.dashboard"]:
        return {}
    app = project_dashboard(settings, stores)
    return {app.prefix: app}


@monitor.command("metrics")
@click.argument("target", default=".")
@click.option("--since", default="24h", show_default=True, help=f"Start: {TIME_HELP}.")
@click.option("--until", help=f"End: {TIME_HELP}. Default: now.")
@click.option("--step", help="Bucket size of the series, e.g. 1h. Default: about 60 buckets over the window.")
@click.option(
    "--by",
    type=click.Choice(["model_version", "rules_version", "none"]),
    default="none",
    show_default=True,
    help="Also print the metrics per model or rules version.",
)
@click.option("--store", "store_url", help="The store to read, e.g. postgresql://... Default: store.url.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON instead of tables.")
def metrics(
    target: str, since: str, until: str | None, step: str | None, by: str, store_url: str | None, as_json: bool
) -> None:
    """Print the online metrics of the service in TARGET over a time window, as tables: traffic,
    latency, and the metrics its output kind needs (label, binary score, regression, ranking)."""
    from shipway.cli.metrics_view import metrics_tables
    from shipway.monitoring.dashboard import Window
    from shipway.monitoring.metrics.online import online_metrics
    from shipway.store import open_store
    from shipway.store.outcomes import reader_of

    try:
        settings = project_settings(target, {"store.url": store_url})
        window = Window.parse(since, until, step)
        group = None if by == "none" else by
        with open_store(settings["store.url"], settings.root) as store:
            result = online_metrics(
                store,
                settings["name"],
                since=window.since,
                until=window.until,
                step_s=window.step_s,
                by=group,
                describe=reader_of(settings),
            )
    except ShipwayError as err:
        fail(err)
    if as_json:
        sys.stdout.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        click.echo(metrics_tables(result.to_dict()))


@monitor.command("report")
@click.argument("target", default=".")
@click.option("--since", default="7d", show_default=True, help=f"Start: {TIME_HELP}.")
@click.option("--until", help=f"End: {TIME_HELP}. Default: now.")
@click.option("--step", help="Bucket size of the series, e.g. 1h. Default: about 60 buckets over the window.")
@click.option(
    "--by",
    type=click.Choice(["model_version", "rules_version", "none"]),
    default="model_version",
    show_default=True,
    help="Split the series by this version.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="report.html",
    show_default=True,
    help="Where to write the HTML file.",
)
@click.option("--store", "store_url", help="The store to read, e.g. postgresql://... Default: store.url.")
def report(
    target: str, since: str, until: str | None, step: str | None, by: str, out: Path, store_url: str | None
) -> None:
    """Write a self-contained HTML report of the service in TARGET over a time window:
    metrics, plots, drift, alerts, validation and the slowest and least confident predictions."""
    from shipway.monitoring.dashboard import Window
    from shipway.monitoring.dashboard.report import write_report

    try:
        settings = project_settings(target, {"store.url": store_url})
        window = Window.parse(since, until, step)
        app = project_dashboard(settings)
        try:
            written = write_report(app.sources(), window, out, by=None if by == "none" else by)
        finally:
            app.close()
    except ShipwayError as err:
        fail(err)
    click.echo(f"shipway: wrote {written} ({written.stat().st_size / 1e6:.1f} MB)", err=True)


@click.command()
@click.argument("target", default=".")
@click.option("--store", "store_url", help="The store to read, e.g. postgresql://... Default: store.url.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8050, show_default=True, help="TCP port.")
def dashboard(target: str, store_url: str | None, host: str, port: int) -> None:
    """Serve the monitoring dashboard of the service in TARGET over its store alone, at /dashboard.

    The same page `shipway serve` mounts, without the service: predictions show their logged
    record but no fresh trace. Without SHIPWAY_ADMIN_TOKEN only this machine may read it."""
    import uvicorn

    try:
        settings = project_settings(target, {"store.url": store_url})
        app = project_dashboard(settings)
        app.sources()  # fail now, not on the first page, if the store is unreachable
        app.close()
    except ShipwayError as err:
        fail(err)
    click.echo(f"shipway: dashboard of {settings['name']!r} on http://{host}:{port}{app.prefix}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
