"""`shipway deploy`: move a running service to new model artifacts, gated on its parity with
the training run and on its suites."""

from __future__ import annotations

import os
from pathlib import Path

import click

from shipway.cli.common import fail, load_project, project_gate
from shipway.cli.rules import TARGET_HELP, URL_HELP, admin_request
from shipway.core.artifacts import deployable, verify_artifacts
from shipway.core.held_out import HELD_OUT
from shipway.core.service import read_ids
from shipway.deploy.parity import parity_gate
from shipway.errors import GateFailed, ShipwayError
from shipway.registry import is_registry_name
from shipway.store import store_from_url

__all__ = ["deploy"]


@click.command()
@click.argument("artifacts", type=click.Path(file_okay=False))
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--url", default=None, help=URL_HELP)
@click.option("--actor", default=None, help="Who deploys, for the history (default: $USER).")
@click.option(
    "--gate/--no-gate",
    default=True,
    show_default=True,
    help="Without --url: refuse the model unless the project's validation suites pass with it.",
)
@click.option(
    "--parity/--no-parity",
    default=True,
    show_default=True,
    help="Without --url: refuse the model unless it answers the held-out examples its training run "
    "recorded as it did then (docs/deploy.md#the-parity-gate).",
)
def deploy(artifacts: str, target: str, url: str | None, actor: str | None, gate: bool, parity: bool) -> None:
    """Serve the model in ARTIFACTS (a folder train.py wrote, or a registered model version or
    alias): it is loaded beside the live model, checked against the validation suites, and only
    then swapped in by every worker."""
    actor = actor or os.environ.get("USER")
    try:
        named = is_registry_name(artifacts)
        if url:
            # The service resolves a folder or a registered name itself: give it an absolute path.
            body = {"artifacts": artifacts if named else str(Path(artifacts).resolve()), "actor": actor}
            event = admin_request(url, "POST", "/admin/model", body)["applied"]
        else:
            folder = _registered(artifacts, target) if named else Path(artifacts).resolve()
            event = _deploy_to_store(folder, target, actor, gate, parity)
    except ShipwayError as err:
        fail(err, code=1)
    click.echo(f"deployed model {event['version']} from {event['artifacts']}")


def _registered(name: str, target: str) -> Path:
    """A model version or alias of the registry, as its verified folder under deploy.root."""
    from shipway.registry import checkout

    _, settings = load_project(target)
    store = store_from_url(settings["store.url"], settings.root)
    store.open()
    try:
        return checkout(store, settings, name)
    finally:
        store.close()


def _deploy_to_store(artifacts: Path, target: str, actor: str | None, gated: bool, parity: bool) -> dict[str, str]:
    service, settings = load_project(target)
    artifacts = deployable(artifacts, settings)
    verify_artifacts(artifacts)  # also when not gated: the store names only verified folders
    ids = {"service": settings["name"], **read_ids(artifacts), "rules_version": None}
    gate = project_gate(settings) if gated else None
    recorded = (artifacts / HELD_OUT).is_file()
    if parity and not recorded:
        click.echo(f"parity gate: skipped, {artifacts} holds no {HELD_OUT} (train with `shipway train` to record it)")
    # The candidate loads here, beside whatever is live; nothing is recorded unless it passes.
    pipeline = service.setup(artifacts, ids) if gate is not None or (parity and recorded) else None
    if pipeline is not None and parity and recorded:
        click.echo(f"parity gate: {parity_gate(pipeline, artifacts, settings['deploy.parity_tolerance']).summary()}")
    if gate is not None and pipeline is not None:
        result = gate(pipeline)
        if not result.ok:
            raise GateFailed(f"model {ids['model_version']} refused by the validation gate: {result.summary}")
    store = store_from_url(settings["store.url"], settings.root)
    store.open()
    try:
        event = store.record_model(settings["name"], ids["model_version"] or "", str(artifacts), actor=actor)
    finally:
        store.close()
    return {"version": event.version, "artifacts": event.source}
