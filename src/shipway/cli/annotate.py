"""`shipway annotate`: a note on the service's timeline, or `--list` the notes."""

from __future__ import annotations

import click
import orjson

from shipway.cli.common import fail, table
from shipway.cli.monitor import project_settings
from shipway.cli.rules import parse_when
from shipway.common.times import TIME_HELP, iso
from shipway.errors import ConfigError, ShipwayError
from shipway.monitoring.annotations import annotate as record_note
from shipway.monitoring.annotations import timeline
from shipway.store import open_store
from shipway.store.annotations import Annotation

__all__ = ["annotate"]


@click.command()
@click.argument("text", required=False)
@click.option("--project", "target", default=".", help="The project whose store and name to use (default: here).")
@click.option("--store", "store_url", help="The store, e.g. postgresql://... Default: store.url.")
@click.option("--service", default=None, help="The service the note is on (default: the project's `name`).")
@click.option("--actor", default=None, help="Who writes it (default: $SHIPWAY_ACTOR, else your login name).")
@click.option("--at", "at_text", default=None, help=f"When the note applies (default: now): {TIME_HELP}.")
@click.option("--list", "listing", is_flag=True, help="List the service's notes instead of writing one.")
@click.option("--since", default=None, help=f"With --list: the notes from this time on: {TIME_HELP}.")
@click.option("--all-services", is_flag=True, help="With --list: every service's notes.")
@click.option("--json", "as_json", is_flag=True, help="Print the note (or the list) as JSON.")
def annotate(
    text: str | None,
    target: str,
    store_url: str | None,
    service: str | None,
    actor: str | None,
    at_text: str | None,
    listing: bool,
    since: str | None,
    all_services: bool,
    as_json: bool,
) -> None:
    """Record TEXT on the service's timeline ("retrained on the March data"), or with --list show
    the notes, oldest first."""
    at = None if at_text is None else parse_when(at_text, "--at")
    start = None if since is None else parse_when(since, "--since")
    try:
        if listing == (text is not None):
            raise ConfigError(
                "give the note's TEXT to record it, or --list to show the notes (not both): "
                "shipway annotate 'retrained on March' or shipway annotate --list --since 7d"
            )
        if not listing and (since is not None or all_services):
            raise ConfigError("--since and --all-services go with --list; drop them to record a note")
        settings = project_settings(target, {"store.url": store_url})
        name = service or settings["name"]
        with open_store(settings["store.url"], settings.root) as store:
            if text is not None:
                notes = [record_note(store, name, text, actor=actor, at=at)]
            else:
                notes = timeline(store, None if all_services else name, start)
    except ShipwayError as err:
        fail(err)
    _render(notes, listing, as_json)


def _render(notes: list[Annotation], listing: bool, as_json: bool) -> None:
    if as_json:
        data = [n.to_dict() for n in notes]
        click.echo(orjson.dumps(data if listing else data[0]).decode())
    elif not listing:
        note = notes[0]
        click.echo(f"noted on {note.service} at {iso(note.ts)} by {note.actor}: {note.text}")
    elif not notes:
        click.echo("no notes")
    else:
        rows = [(iso(n.ts), n.service, n.actor, n.text) for n in notes]
        for line in table(["time", "service", "actor", "text"], rows, right=set()):
            click.echo(line)
