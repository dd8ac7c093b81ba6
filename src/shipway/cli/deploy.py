"""`shipway deploy`: move a running service to new model artifacts, gated on its parity with
the training run and on its suites."""

from __future__ import annotations

import os
from pathlib import Path

import click

from shipway.cli.common import fail, open_project
from shipway.cli.rules import TARGET_HELP, URL_HELP, admin_request
from shipway.core.artifacts import deployable, verify_artifacts
from shipway.core.held_out import HELD_OUT
from shipway.deploy.parity import parity_gate
from shipway.errors import ShipwayError
from shipway.registry import is_registry_name
from shipway.rules.live import LiveRules

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

    project = open_project(target)
    try:
        return checkout(project.store.get(), project.settings, name)
    finally:
        project.close()


def _deploy_to_store(artifacts: Path, target: str, actor: str | None, gated: bool, parity: bool) -> dict[str, str]:
    project = open_project(target, gated=gated)
    try:
        artifacts = deployable(artifacts, project.settings)
        verify_artifacts(artifacts)  # also when not gated: the store names only verified folders
        ids = project.ids(artifacts)
        recorded = (artifacts / HELD_OUT).is_file()
        if parity and not recorded:
            click.echo(
                f"parity gate: skipped, {artifacts} holds no {HELD_OUT} (train with `shipway train` to record it)"
            )
        # The candidate loads here, beside whatever is live; nothing is recorded unless it passes.
        if parity and recorded:
            # The model's answers, before any rules, against the ones its training run recorded.
            model_only = project.build(LiveRules(), artifacts)
            click.echo(
                f"parity gate: {parity_gate(model_only, artifacts, project.settings['deploy.parity_tolerance']).summary()}"
            )
        if project.gate is not None:
            # With the rules that serve now, as a running service gates it.
            rules = project.rules_manager(artifacts)
            rules.load()
            project.check(project.build(rules.live, artifacts), f"model {ids['model_version']}")
        event = project.store.get().record_model(project.name, ids["model_version"] or "", str(artifacts), actor=actor)
    finally:
        project.close()
    return {"version": event.version, "artifacts": event.source}
