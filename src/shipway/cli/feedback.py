"""`shipway feedback import`: outcomes that arrived later, in bulk, joined to their predictions."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from shipway.cli.common import fail
from shipway.cli.monitor import project_settings
from shipway.errors import ConfigError, ShipwayError
from shipway.store import store_from_url
from shipway.store.outcomes import parse_feedback, reader_of
from shipway.store.records import FeedbackOutcome

__all__ = ["feedback"]

CHUNK = 10_000


@click.group()
def feedback() -> None:
    """Outcomes that arrive after the prediction: the true label, a click, a reopened case."""


@feedback.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", "target", default=".", help="The project whose store and settings to use (default: here).")
@click.option("--store", "store_url", help="The store to write, e.g. postgresql://... Default: store.url.")
@click.option("--name", help="For a CSV with a `value` column: the outcome's name (default: label).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def import_(file: Path, target: str, store_url: str | None, name: str | None, as_json: bool) -> None:
    """Record the outcomes in FILE: CSV with request_id and label (or name and value) columns
    and an optional ts, or JSON Lines / a JSON list of {"request_id", "label"} objects."""
    try:
        settings = project_settings(target, {"store.url": store_url})
        if not file.is_file():
            raise ConfigError(f"no feedback file at {file}; give the path of a .csv, .jsonl or .json file")
        describe = reader_of(settings)
        store = store_from_url(settings["store.url"], settings.root)
        store.open()
        total = FeedbackOutcome()
        try:
            for items in _chunks(file, name):
                outcome = store.write_feedback(
                    parse_feedback(items, describe), describe, late_after_s=settings["monitoring.late_after_s"]
                )
                total.accepted += outcome.accepted
                total.duplicates += outcome.duplicates
                total.unknown += outcome.unknown
                total.late += outcome.late
        finally:
            store.close()
    except ShipwayError as err:
        fail(err)
    summary = total.to_dict()
    if as_json:
        click.echo(orjson.dumps(summary).decode())
        return
    click.echo(
        f"{summary['accepted']} outcomes recorded from {file}: {summary['joined']} joined to their predictions, "
        f"{summary['unknown']} unknown ids (kept; joined if the prediction is logged later), "
        f"{summary['duplicates']} duplicates (the newest value kept), {summary['late']} late"
    )
    for kind, ids in (("unknown", total.unknown), ("duplicate", total.duplicates), ("late", total.late)):
        if ids:
            click.echo(f"  {kind}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")


def _chunks(file: Path, name: str | None) -> Iterator[list[Any]]:
    text = file.read_text(encoding="utf-8-sig")
    if file.suffix.lower() == ".csv":
        items: Iterator[Any] = _csv_items(text, name, file)
    elif text.lstrip().startswith("["):
        items = iter(_json(text, file, 0))
    else:
        items = (_json(line, file, n) for n, line in enumerate(text.splitlines(), start=1) if line.strip())
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _json(text: str, file: Path, line: int) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        where = f"{file}:{line}" if line else str(file)
        raise ConfigError(
            f"{where} is not valid JSON ({exc}); write one JSON object per line, or one JSON list"
        ) from exc


def _csv_items(text: str, name: str | None, file: Path) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    if "request_id" not in columns or not ({"label", "value"} & columns):
        raise ConfigError(
            f"{file} has columns {sorted(columns)}; it needs request_id and label (or value, with --name or a "
            "name column), and may have ts"
        )
    for row in reader:
        item: dict[str, Any] = {"request_id": row["request_id"]}
        if row.get("ts"):
            ts = row["ts"]
            item["ts"] = float(ts) if ts.replace(".", "", 1).isdigit() else ts
        if "label" in columns and row.get("label", "") != "":
            item["label"] = row["label"]
        else:
            item["name"] = row.get("name") or name or "label"
            item["value"] = _cell(row.get("value", ""))
        yield item


def _cell(raw: str) -> Any:
    """A CSV cell as JSON where it reads as JSON (true, 3.5), else as the text."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
