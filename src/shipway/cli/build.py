"""`shipway build`: the project as an OCI image (Containerfile, locked wheels, buildah)."""

from __future__ import annotations

import click

from shipway.cli.common import fail, load_project
from shipway.cli.deploy import registered
from shipway.cli.rules import TARGET_HELP
from shipway.errors import ShipwayError

__all__ = ["build"]


@click.command()
@click.option("--target", default=".", help=TARGET_HELP)
@click.option("--image", default=None, help="The image's name and tag (default: build.image).")
@click.option("--base", default=None, help="The base image (default: build.base).")
@click.option(
    "--model",
    default=None,
    help="A registered model version or alias to put in the image instead of the project's artifacts folder.",
)
@click.option(
    "--context-only",
    is_flag=True,
    help="Write the Containerfile and its context in .shipway/build/ without building.",
)
def build(target: str, image: str | None, base: str | None, model: str | None, context_only: bool) -> None:
    """Write a Containerfile for the project and build its image with buildah, podman or docker."""
    from shipway.deploy.container import build_context, build_image, default_image

    try:
        _, settings = load_project(target)
        folder = registered(model, target) if model else None
        name = image or default_image(settings, folder)
        chosen_base = base or settings["build.base"]
        if "@sha256:" not in chosen_base:
            click.echo(
                f"warning: the base {chosen_base} is pinned by tag only, and a tag can move; "
                "pin its digest (name@sha256:...) in build.base for byte-for-byte rebuilds.",
                err=True,
            )
        context = build_context(settings, base, folder)
        click.echo(f"wrote {context / 'Containerfile'} and its context")
        if context_only:
            return
        built = build_image(context, name, settings["build.engine"])
    except ShipwayError as err:
        fail(err, code=1)
    click.echo(f"built {built.image} ({built.image_id or 'id unknown'}) with {built.engine}")
