"""`shipway data`: build, list, show and diff dataset versions (docs/experiments.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import click
import orjson

from shipway.cli.common import echo_json, fail, load_project, table
from shipway.core.service import Service
from shipway.core.settings import Settings
from shipway.errors import ShipwayError
from shipway.store import Store, open_store
from shipway.store.datasets import DatasetRecord
from shipway.store.objects import ObjectStore

__all__ = ["data", "experiment_store", "when"]

TARGET_HELP = "The project folder (default: this folder)."
JSON_HELP = "Print JSON instead of a table."


@contextlib.contextmanager
def experiment_store(target: str) -> Iterator[tuple[Service, Settings, Store, ObjectStore]]:
    """The project in `target`, its store (opened) and its artifact folder."""
    service, settings = load_project(target)
    store = open_store(settings["store.url"], settings.root)
    try:
        yield service, settings, store, ObjectStore(settings.path("experiments.objects"))
    finally:
        store.close()


def when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def data() -> None:
    """Dataset versions: build and register, list, show, diff."""


@data.command()
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def build(target: str, as_json: bool) -> None:
    """Run the dataset step (data.command) and register the dataset it writes (data.dir)."""
    from shipway.experiments.training import build_dataset

    try:
        with experiment_store(target) as (service, settings, store, objects):
            record = build_dataset(settings, service, store, objects, echo=None if as_json else click.echo)
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(record.to_dict())
        return
    click.echo(f"dataset {record.name} version {record.version}")
    _describe(record)


def _describe(record: DatasetRecord) -> None:
    click.echo(f"  rows: {', '.join(f'{k} {v:,}' for k, v in record.rows.items())}")
    click.echo(f"  schema: {', '.join(f'{k}: {v}' for k, v in record.schema.items())}; target: {record.target}")
    click.echo(
        f"  built {when(record.created)} UTC from commit {record.code_commit or '(none)'} by {record.command or '(registered)'}"
    )


@data.command("list")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def list_(target: str, as_json: bool) -> None:
    """List the registered dataset versions, newest first."""
    try:
        with experiment_store(target) as (_, _, store, _):
            records = store.list_datasets()
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json([r.to_dict() for r in records])
        return
    rows = [
        (
            r.version,
            r.name,
            when(r.created),
            sum(r.rows.values()),
            len(set().union(*r.labels.values())) if r.labels else 0,
            (r.code_commit or "")[:10],
        )
        for r in records
    ]
    click.echo("\n".join(table(("version", "name", "built (UTC)", "rows", "labels", "commit"), rows, right={3, 4})))


@data.command()
@click.argument("version")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def show(version: str, target: str, as_json: bool) -> None:
    """Show dataset VERSION (or a unique prefix): rows, schema, label distribution, files."""
    try:
        with experiment_store(target) as (_, _, store, _):
            record = store.get_dataset(version)
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(record.to_dict())
        return
    click.echo(f"dataset {record.name} version {record.version}")
    _describe(record)
    splits = list(record.labels)
    labels = sorted(set().union(*record.labels.values())) if record.labels else []
    if labels:
        click.echo("  labels:")
        rows = [(label, *(record.labels[s].get(label, 0) for s in splits)) for label in labels]
        click.echo("\n".join(table(("label", *splits), rows, right=set(range(1, len(splits) + 1)))))
    click.echo("  files:")
    click.echo(
        "\n".join(
            table(
                ("file", "bytes", "sha256"),
                [(k, f"{v['size']:,}", v["digest"][:16]) for k, v in record.files.items()],
                right={1},
            )
        )
    )


@data.command()
@click.argument("a")
@click.argument("b")
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def diff(a: str, b: str, target: str, as_json: bool) -> None:
    """What changed from dataset version A to B: rows added, removed and relabelled per split,
    the label distribution and the schema."""
    from shipway.experiments.dataset_versions import diff_datasets

    try:
        with experiment_store(target) as (_, _, store, objects):
            result = diff_datasets(store.get_dataset(a), store.get_dataset(b), objects)
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"dataset {result.a} -> {result.b}")
    rows = [
        (
            split,
            f"{result.rows.get(split, ('', ''))[0]}",
            f"{result.rows.get(split, ('', ''))[1]}",
            d.added,
            d.removed,
            d.relabelled,
            "yes" if d.reordered else "",
        )
        for split, d in result.splits.items()
    ]
    click.echo(
        "\n".join(
            table(
                ("split", "rows before", "rows after", "added", "removed", "relabelled", "reordered only"),
                rows,
                right={1, 2, 3, 4, 5},
            )
        )
    )
    for split, counts in result.labels.items():
        changes = ", ".join(f"{label} {old}->{new}" for label, (old, new) in counts.items())
        click.echo(f"  labels in {split}: {changes}")
    for key, (old, new) in result.schema.items():
        click.echo(f"  schema: {key} {old or '(absent)'} -> {new or '(absent)'}")
    for split, d in result.splits.items():
        for kind, examples in d.examples.items():
            for example in examples:
                click.echo(f"  {split} {kind}: {orjson.dumps(example).decode()}")
