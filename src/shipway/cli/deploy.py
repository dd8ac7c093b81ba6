"""`shipway deploy`: move a running service to new model artifacts, gated on its parity with
the training run and on its suites; or, with `--to kubernetes`, render (and on a configured
cluster apply) the project's manifests."""

from __future__ import annotations

from pathlib import Path

import click

from shipway.cli.common import fail, open_project
from shipway.cli.rules import TARGET_HELP, URL_HELP, admin_request
from shipway.core.artifacts import deployable, verify_artifacts
from shipway.core.held_out import HELD_OUT
from shipway.deploy.parity import parity_gate
from shipway.errors import ShipwayError
from shipway.registry import is_registry_name, who
from shipway.rules.live import LiveRules

__all__ = ["deploy", "registered"]


@click.command()
@click.argument("artifacts", type=click.Path(file_okay=False), required=False)
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--url", default=None, help=URL_HELP)
@click.option(
    "--actor", default=None, help="Who deploys, for the history (default: $SHIPWAY_ACTOR, else your login name)."
)
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
@click.option(
    "--to",
    "to",
    type=click.Choice(["service", "kubernetes"]),
    default="service",
    show_default=True,
    help="service: swap the model of the running service (its store, or --url). kubernetes: write the "
    "manifests into kubernetes.out and, when a kubeconfig is found, apply them and wait for the rollout.",
)
@click.option("--image", default=None, help="With --to kubernetes: the image to run (default: build.image).")
@click.option(
    "--apply/--no-apply",
    "apply",
    default=None,
    help="With --to kubernetes: apply to the cluster (default: when $KUBECONFIG or ~/.kube/config exists).",
)
def deploy(
    artifacts: str | None,
    target: str,
    url: str | None,
    actor: str | None,
    gate: bool,
    parity: bool,
    to: str,
    image: str | None,
    apply: bool | None,
) -> None:
    """Serve the model in ARTIFACTS (a folder train.py wrote, or a registered model version or
    alias): it is loaded beside the live model, checked against the validation suites, and only
    then swapped in by every worker. With --to kubernetes, the image `shipway build` made runs on
    Kubernetes (ARTIFACTS is not taken: the image or its volume holds them)."""
    if to == "kubernetes":
        if artifacts:
            fail(f"--to kubernetes deploys the image, not {artifacts!r}: leave ARTIFACTS out (`shipway build` "
                 "puts the artifacts in the image, or set build.artifacts = 'mount').")  # fmt: skip
        _to_kubernetes(target, image, apply)
        return
    if not artifacts:
        fail("missing ARTIFACTS: the folder train.py wrote, or a registered model version or alias.")
    actor = actor or who()
    try:
        named = is_registry_name(artifacts)
        if url:
            # The service resolves a folder or a registered name itself: give it an absolute path.
            body = {"artifacts": artifacts if named else str(Path(artifacts).resolve()), "actor": actor}
            event = admin_request(url, "POST", "/admin/model", body)["applied"]
        else:
            folder = registered(artifacts, target) if named else Path(artifacts).resolve()
            event = _deploy_to_store(folder, target, actor, gate, parity)
    except ShipwayError as err:
        fail(err, code=1)
    click.echo(f"deployed model {event['version']} from {event['artifacts']}")


def registered(name: str, target: str) -> Path:
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
            passed = project.check(project.build(rules.live, artifacts), f"model {ids['model_version']}")
            if passed is not None:
                click.echo(f"validation gate: {passed.summary}")
        event = project.store.get().record_model(project.name, ids["model_version"] or "", str(artifacts), actor=actor)
    finally:
        project.close()
    return {"version": event.version, "artifacts": event.source}


def _to_kubernetes(target: str, image: str | None, apply: bool | None) -> None:
    from shipway.deploy import kubernetes

    try:
        settings = open_project(target).settings
        folder = settings.path("kubernetes.out")
        manifests = kubernetes.render(settings, image)
        written = kubernetes.write(manifests, folder, settings["kubernetes.namespace"])
        runs = manifests["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]["image"]
        if runs.startswith("localhost/"):
            click.echo(
                f"warning: the Deployment runs {runs}, which a cluster finds only if it was loaded into its nodes "
                "(kind load, minikube image load): push the image to a registry and set build.image (or --image).",
                err=True,
            )
        click.echo(f"wrote {len(written)} files to {folder}: {', '.join(p.name for p in written)}")
        found = kubernetes.kubeconfig()
        if apply is None:
            apply = bool(found)
        if not apply:
            why = "--no-apply" if found else "no kubeconfig found ($KUBECONFIG, ~/.kube/config)"
            click.echo(f"not applied ({why}); apply them with: kubectl apply -k {folder}")
            return
        name = kubernetes.dns_name(settings["name"])
        said = kubernetes.apply(
            folder, name, settings["kubernetes.namespace"], settings["kubernetes.rollout_timeout_s"]
        )
    except ShipwayError as err:
        fail(err, code=1)
    click.echo(said)
