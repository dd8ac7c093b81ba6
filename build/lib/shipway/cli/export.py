"""`shipway export`: the prediction log and the feedback as Parquet files (docs/analysis.md)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
import orjson

from shipway.cli.common import fail, load_project
from shipway.errors import ShipwayError

__all__ = ["export"]


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
    partitioned by day and model version, with the service's fields as typed columns."""
    from shipway.store import store_from_url
    from shipway.store.columnar import LogSchema
    from shipway.store.export import Exporter, ExportResult

    try:
        overrides: dict[str, Any] = {"store.url": store_url, "export.dir": export_dir, "export.interval_s": interval}
        service, settings = load_project(target, {k: v for k, v in overrides.items() if v is not None})
        inputs, outputs = service.schemas()
        schema = LogSchema.from_json_schemas(inputs.json_schema(), outputs.json_schema())
        archive = settings["export.archive_dir"]
        store = store_from_url(settings["store.url"], settings.root)
        store.open()
    except ShipwayError as err:
        fail(err, code=1)
    root = settings.path("export.dir")
    exporter = Exporter(
        store,
        root,
        schema,
        retention_days=settings["export.retention_days"],
        archive_dir=settings.root / archive if archive else None,
    )

    def report(result: ExportResult) -> None:
        if as_json:
            click.echo(orjson.dumps(result.to_dict()).decode())
        elif result.rows or result.feedback_rows or result.dropped or result.archived or not follow:
            more = "".join(
                f"; {label} {', '.join(days)}"
                for label, days in (("dropped", result.dropped), ("archived", result.archived))
                if days
            )
            feedback = "" if result.feedback_rows is None else f"; feedback: {result.feedback_rows} rows"
            click.echo(f"exported {result.rows} predictions into {len(result.files)} files in {root}{feedback}{more}")

    try:
        if not follow:
            report(exporter.run())
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        exporter.follow(settings["export.interval_s"], stop, report)
    except ShipwayError as err:
        fail(err, code=1)
    finally:
        store.close()
