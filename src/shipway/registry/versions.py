"""The model registry: a run's model made an immutable version, aliases that move, and the
version's files laid out as a deployable folder (docs/registry.md).

Beside store and rules in the layers (DESIGN.md), so that deploy and serving can resolve a
version or an alias to its verified folder. The tables are in store/registry.py.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from pathlib import Path

from shipway.core.artifacts import verify_artifacts
from shipway.core.held_out import HELD_OUT
from shipway.core.settings import Settings
from shipway.errors import RegistryError
from shipway.store.base import Store
from shipway.store.objects import ObjectStore
from shipway.store.registry import AliasMove, ModelVersion

__all__ = [
    "PRODUCTION_ALIASES",
    "checkout",
    "is_registry_name",
    "materialize",
    "move_alias",
    "register_run",
    "resolve",
    "who",
]

# Aliases that serve production: a model from uncommitted code takes one only with allow_dirty.
PRODUCTION_ALIASES = frozenset({"champion", "production"})
_PREFIX = "artifacts/"


def who() -> str:
    """The person a registry change is recorded against: $SHIPWAY_ACTOR, else the login name."""
    return os.environ.get("SHIPWAY_ACTOR") or getpass.getuser()


def register_run(store: Store, run_id: str, by: str | None = None) -> ModelVersion:
    """Make the model a finished run wrote an immutable version, named by the digest of its files."""
    run = store.get_run(run_id)
    if run.status != "finished":
        raise RegistryError(f"run {run.id} is {run.status}; only a finished run's model can be registered.")
    files = {
        name[len(_PREFIX) :]: {"digest": ref.digest, "size": ref.size}
        for name, ref in sorted(run.artifacts.items())
        if name.startswith(_PREFIX)
    }
    if "manifest.json" not in files:
        raise RegistryError(
            f"run {run.id} recorded no artifacts/manifest.json (its artifacts: {', '.join(run.artifacts) or 'none'}); "
            "register runs of `shipway try` or `shipway train`, whose model folder has a manifest."
        )
    # The model's own files name the version, as the run's manifest names it: the held-out answers
    # (evidence for the parity gate, written after the fit) are kept with it but not in its name.
    digest = hashlib.sha256()
    for name, info in files.items():
        if name not in ("manifest.json", HELD_OUT):
            digest.update(f"{name}\0{info['digest']}\n".encode())
    record = ModelVersion(
        version=f"{run.recipe or run.name or 'model'}-{digest.hexdigest()[:12]}",
        digest=digest.hexdigest(),
        run_id=run.id,
        recipe=run.recipe,
        task=run.task,
        dataset_version=run.dataset_version,
        code_commit=run.code_commit,
        dirty=run.dirty,
        created_by=by or who(),
        files=files,
        metrics={k: float(v) for k, v in run.metrics.items()},
    )
    return store.register_model_version(record)


def resolve(store: Store, name: str) -> ModelVersion:
    """The version an alias points at, or the version of that name (or unique prefix)."""
    aliased = store.get_alias(name)
    return store.get_model_version(aliased or name)


def move_alias(
    store: Store, alias: str, name: str, *, by: str | None = None, allow_dirty: bool = False, note: str | None = None
) -> AliasMove:
    """Point `alias` at a version (or at what another alias points at)."""
    version = resolve(store, name)
    if alias in PRODUCTION_ALIASES and version.dirty and not allow_dirty:
        raise RegistryError(
            f"version {version.version} comes from run {version.run_id}, trained on uncommitted changes (commit "
            f"{(version.code_commit or '?')[:8]}, dirty); {alias!r} serves production. Commit the code and train "
            "again, or pass --allow-dirty to move it anyway (recorded in the history)."
        )
    note = note if not (version.dirty and allow_dirty) else f"{note + '; ' if note else ''}dirty code allowed"
    return store.set_alias(alias, version.version, by or who(), note)


def materialize(version: ModelVersion, objects: ObjectStore, root: Path) -> Path:
    """The version's files as a folder `root/<version>` (written once), checked against its manifest."""
    folder = Path(root) / version.version
    if not folder.is_dir():
        partial = folder.with_name(f".{version.version}.{os.getpid()}.partial")
        for name, info in version.files.items():
            if not objects.has(info["digest"]):
                raise RegistryError(
                    f"the file {name} of model version {version.version} (sha256 {info['digest'][:12]}...) is not "
                    f"in the artifact folder {objects.root}; point experiments.objects at the folder the run used."
                )
            objects.copy_to(info["digest"], partial / name)
        partial.rename(folder)
    verify_artifacts(folder)
    return folder


def is_registry_name(given: str) -> bool:
    """Whether a deploy argument names a registered version or alias rather than a folder: no
    path separator, not `.` or `..`, and no folder of that name here."""
    return not ("/" in given or os.sep in given or given in (".", "..") or Path(given).is_dir())


def checkout(store: Store, settings: Settings, name: str) -> Path:
    """A version or alias as its verified folder under deploy.root (`<deploy.root>/models/<version>`,
    `.shipway/models/<version>` when deploy.root is unset), for `shipway deploy` and POST /admin/model."""
    base = settings.path("deploy.root") if settings["deploy.root"] else settings.root / ".shipway"
    return materialize(resolve(store, name), ObjectStore(settings.path("experiments.objects")), base / "models")
