"""`shipway parity`: does a model version answer its held-out examples as its training run did?"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
import orjson

from shipway.cli.common import fail, load_project
from shipway.deploy.parity import candidate_pipeline, check_parity, run_folder
from shipway.errors import ShipwayError
from shipway.registry import is_registry_name
from shipway.store import store_from_url
from shipway.store.objects import ObjectStore

__all__ = ["parity"]


@click.command()
@click.argument("model", required=False)
@click.option("--run", "run_id", default=None, help="Check the model a run recorded instead (a run id).")
@click.option("--target", default=".", show_default=True, help="The project whose pipeline runs the model.")
@click.option("--tolerance", type=float, default=None, help="Override deploy.parity_tolerance for scores.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def parity(model: str | None, run_id: str | None, target: str, tolerance: float | None, as_json: bool) -> None:
    """Run MODEL (an artifacts folder, or a registered version or alias; default: the project's
    `artifacts`) through the project's pipeline over the held-out examples its training run
    answered, and compare: labels exactly, scores within deploy.parity_tolerance. Exits 1 on a
    mismatch, showing the first differing examples with their traces."""
    try:
        _, settings = load_project(target)
        with tempfile.TemporaryDirectory(prefix="shipway-parity-") as tmp:
            folder = _folder(model, run_id, target, Path(tmp))
            pipeline = candidate_pipeline(target, folder)
            report = check_parity(
                pipeline, folder, settings["deploy.parity_tolerance"] if tolerance is None else tolerance
            )
    except ShipwayError as err:
        fail(err, code=1)
    click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2, default=str) if as_json else report.render())
    sys.exit(0 if report.ok else 1)


def _folder(model: str | None, run_id: str | None, target: str, tmp: Path) -> Path:
    if model and run_id:
        raise click.UsageError("give a MODEL or --run RUN, not both")
    _, settings = load_project(target)
    if run_id is None and not model:
        return settings.path("artifacts")
    if model and not is_registry_name(model):
        return Path(model).resolve()
    store = store_from_url(settings["store.url"], settings.root)
    store.open()
    try:
        if run_id is not None:
            return run_folder(store, ObjectStore(settings.path("experiments.objects")), run_id, tmp)
        from shipway.registry import checkout

        return checkout(store, settings, str(model))
    finally:
        store.close()
