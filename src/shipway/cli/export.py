"""`shipway export`: the prediction log and the feedback as Parquet files (docs/analysis.md),
and the same upkeep as a background job of `shipway serve` (`export.in_serve`, `log.retention_days`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import orjson

from shipway.cli.common import fail, open_project
from shipway.errors import ExportError, ShipwayError

if TYPE_CHECKING:
    from shipway.core.service import Service
    from shipway.core.settings import Settings
    from shipway.store.log_upkeep import Upkeep, UpkeepResult
    from shipway.store.provider import StoreProvider

__all__ = ["export", "export_jobs"]


def _upkeep(service: Service, settings: Settings, stores: StoreProvider, *, export: bool) -> Upkeep:
    """The project's log upkeep on the store handle of `stores`: the export (when `export`) and
    the store's retention."""
    from shipway.store.columnar import LogSchema
    from shipway.store.log_upkeep import Upkeep

    inputs, outputs = service.schemas()
    root = settings.path("export.dir")
    return Upkeep(
        stores,
        LogSchema.from_json_schemas(inputs.json_schema(), outputs.json_schema()),
        export_dir=root if export else None,
        lock_dir=root,
        retention_days=settings["log.retention_days"],
        archive_dir=settings.path("log.archive_dir") if settings["log.archive_dir"] else None,
        export_retention_days=settings["export.retention_days"],
        export_archive_dir=settings.path("export.archive_dir") if settings["export.archive_dir"] else None,
    )


def export_jobs(
    service: Service, settings: Settings, stores: StoreProvider | None = None
) -> list[tuple[float, Callable[[], object]]]:
    """What `shipway serve` runs in each worker for the log's upkeep: the export with
    `export.in_serve`, the store's retention with `log.retention_days`; one worker of one
    replica works at a time (store/log_upkeep.py). `stores` is the process's store provider
    (the project's), shared with everything else in the worker."""
    in_serve = bool(settings["export.in_serve"])
    if not (in_serve or settings["log.retention_days"]) or not settings["log.enabled"]:
        return []
    if in_serve:
        from shipway.store.typed_columns import need_arrow

        need_arrow()  # refuse to start without pyarrow rather than fail every turn
    from shipway.store.provider import StoreProvider as Provider

    provider = stores if stores is not None else Provider(settings["store.url"], settings.root)
    return [(settings["export.interval_s"], _upkeep(service, settings, provider, export=in_serve))]


@click.command()
@click.argument("target", default=".")
@click.option("--store", "store_url", help="The store to export, e.g. postgresql://... Default: store.url.")
@click.option("--dir", "export_dir", help="Where to write the files. Default: export.dir.")
@click.option("--follow", is_flag=True, help="Keep exporting what is new every export.interval_s, until stopped.")
@click.option("--interval", type=float, help="Seconds between runs with --follow. Default: export.interval_s.")
@click.option("--json", "as_json", is_flag=True, help="Print each run's result as JSON.")
def export(
    target: str, store_url: str | None, export_dir: str | None, follow: bool, interval: float | None, as_json: bool
) -> None:
    """Export what the prediction log and the feedback hold since the last export to Parquet files,
    partitioned by day and model version, with the service's fields as typed columns; then apply
    the store's retention (log.retention_days)."""
    try:
        overrides: dict[str, Any] = {"store.url": store_url, "export.dir": export_dir, "export.interval_s": interval}
        project = open_project(target, {k: v for k, v in overrides.items() if v is not None})
        settings = project.settings
        upkeep = _upkeep(project.service, settings, project.store, export=True)
    except ShipwayError as err:
        fail(err, code=1)
    root = settings.path("export.dir")
    waiting = [False]

    def report(turn: UpkeepResult) -> None:
        if not turn.leader:
            if not follow:
                raise ExportError(
                    f"another process exports into {root} (`shipway serve` with export.in_serve, or "
                    "`shipway export --follow`); stop it, or set --dir to another folder"
                )
            if not waiting[0]:
                click.echo(f"another process exports into {root}; waiting to take over", err=True)
            waiting[0] = True
            return
        waiting[0] = False
        result, retention = turn.export, turn.retention
        if result is None:
            return
        if as_json:
            line = result.to_dict()
            if retention is not None:
                line["store_dropped"] = retention.dropped
            click.echo(orjson.dumps(line).decode())
        elif result.rows or result.feedback_rows or result.dropped or result.archived or retention or not follow:
            more = "".join(
                f"; {label} {', '.join(days)}"
                for label, days in (
                    ("dropped", result.dropped),
                    ("archived", result.archived),
                    ("the store dropped", retention.dropped if retention else []),
                )
                if days
            )
            feedback = "" if result.feedback_rows is None else f"; feedback: {result.feedback_rows} rows"
            click.echo(f"exported {result.rows} predictions into {len(result.files)} files in {root}{feedback}{more}")

    try:
        if not follow:
            report(upkeep())
            return
        stop = threading.Event()

        def stopped(*_: object) -> None:
            stop.set()
            upkeep.stop()  # a run under way ends after its batch

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stopped)
        upkeep.follow(settings["export.interval_s"], stop, report)
    except ShipwayError as err:
        fail(err, code=1)
    finally:
        upkeep.close()
        project.close()  # the one store handle
