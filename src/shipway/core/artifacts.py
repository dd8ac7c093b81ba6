"""Artifacts are code: the one check a model folder passes before anything in it is loaded.

A model file can run code when it is loaded (a pickle, a joblib file, `torch.load` without
`weights_only`). So every load path (`serve`, `predict`, `check`, validation, deploy, each
worker's swap) goes through `Service.run_load`, which calls `verify_artifacts` first:

- `manifest.json` lists every file in the folder with its sha256 (`files`); a file changed,
  missing, or present but not listed refuses the load, naming the file.
- With a manifest key set, `manifest.sig` must hold a signature of manifest.json that a
  configured key verifies: HMAC-SHA256 under a shared secret, or Ed25519 (core/signing.py).
- A folder with files and no manifest is refused; a missing or empty folder has nothing to
  verify (a service without a model).

`write_manifest` writes the manifest (and the signature when a key is set): training calls
it, and `shipway manifest FOLDER` runs it. `deployable` says which folders a running service
may be moved to: those under `deploy.root`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import mmap
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from shipway.core.settings import Settings
from shipway.core.signing import KEY_ENV, PREVIOUS_KEY_ENV, signature_of, verify_signature
from shipway.errors import ArtifactError

__all__ = [
    "KEY_ENV",
    "MANIFEST",
    "PREVIOUS_KEY_ENV",
    "SIGNATURE",
    "deployable",
    "file_sha256",
    "verify_artifacts",
    "write_manifest",
]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_HOW = "write it after training with `shipway manifest {folder}` (or shipway.write_manifest(folder) in train.py)"


def verify_artifacts(folder: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The folder's manifest once every file matches it (and its signature, when a key is set);
    None when there is no folder or it is empty. ArtifactError names what does not match."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    present = _files(folder)
    manifest_file = folder / MANIFEST
    if MANIFEST not in present:
        others = sorted(present - {SIGNATURE})
        if not others:
            return None
        raise ArtifactError(
            f"{folder} holds {_some(others)} but no {MANIFEST}, so nothing says these are the files training "
            f"wrote, and a model file can run code when it is loaded. List them with their sha256: "
            + _HOW.format(folder=folder)
            + "."
        )
    raw = manifest_file.read_bytes()
    verify_signature(manifest_file, raw, folder / SIGNATURE, os.environ if environ is None else environ)
    manifest = _parse(manifest_file, raw)
    listed = _listed(manifest_file, manifest.get("files"))
    unlisted = sorted(present - set(listed) - {MANIFEST, SIGNATURE})
    if unlisted:
        raise ArtifactError(
            f"{folder} holds {_some(unlisted)}, which {MANIFEST} does not list: an artifact nobody recorded is "
            f"not loaded. Delete it, or if training wrote it, list it: " + _HOW.format(folder=folder) + "."
        )
    for name, expected in listed.items():
        if name not in present:
            raise ArtifactError(
                f"artifacts missing: {MANIFEST} lists {name}, which is not in {folder}. Train again, or copy the "
                f"whole artifacts folder."
            )
        actual = file_sha256(folder / name)
        if not hmac.compare_digest(actual, expected.lower()):
            raise ArtifactError(
                f"artifacts changed: {name} in {folder} is not the file {MANIFEST} describes (sha256 "
                f"{actual[:16]}..., the manifest says {expected[:16]}...). It is not loaded. Train again, or "
                f"restore the file the manifest was written with."
            )
    return manifest


def write_manifest(
    folder: Path, fields: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Write `folder/manifest.json`: `fields` (else the manifest already there) with `files` set to the
    sha256 of every file in the folder; sign it when a signing key is set (core/signing.py). Returns the manifest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"cannot write a manifest: {folder} is not a folder; pass the artifacts folder.")
    manifest_file = folder / MANIFEST
    if fields is None:
        fields = _parse(manifest_file, manifest_file.read_bytes()) if manifest_file.is_file() else {}
    names = sorted(_files(folder) - {MANIFEST, SIGNATURE})
    manifest = {**fields, "files": {name: file_sha256(folder / name) for name in names}}
    raw = (json.dumps(manifest, indent=2) + "\n").encode()
    manifest_file.write_bytes(raw)
    body = signature_of(raw, os.environ if environ is None else environ)
    signature = folder / SIGNATURE
    if body is not None:
        signature.write_text(json.dumps(body) + "\n")
    elif signature.exists():
        signature.unlink()  # it signed an older manifest
    return json.loads(raw)


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file. Mapped into memory, it is hashed in one call that releases the GIL
    (about 15% faster than reading it in blocks: docs/benchmarks.md)."""
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return hashlib.sha256(b"").hexdigest()  # an empty file cannot be mapped
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return hashlib.sha256(mapped).hexdigest()


def deployable(given: str | Path, settings: Settings) -> Path:
    """The folder a running service may be moved to: `given` (relative to the project), resolved,
    under `deploy.root`. Models come from there alone; a registry would be a second source here."""
    base = settings.root
    root = settings.path("deploy.root") if settings["deploy.root"] else settings.path("artifacts").parent
    path = Path(given)
    if not str(given).strip():
        raise ArtifactError("no artifacts folder given; pass the folder train.py wrote, under deploy.root.")
    resolved = (base / path).resolve()
    allowed = root.resolve()
    if not resolved.is_relative_to(allowed):
        why = "through a symbolic link " if (base / path).absolute() != resolved and ".." not in path.parts else ""
        raise ArtifactError(
            f"the artifacts folder {given} resolves {why}to {resolved}, outside {allowed} (the `deploy.root` "
            f"setting), where deployable models live. Copy the folder under {allowed}, or set `deploy.root` in "
            f"shipway.toml to the folder that holds your trained models."
        )
    if not resolved.is_dir():
        raise ArtifactError(f"the artifacts folder {resolved} does not exist; pass a folder that train.py wrote.")
    return resolved


def _files(folder: Path) -> set[str]:
    """Every file under `folder`, as POSIX paths relative to it; a link to a folder counts as a file,
    so that it is listed (and refused) rather than followed."""
    found: set[str] = set()
    for here, dirs, files in os.walk(folder):
        rel = Path(here).relative_to(folder)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(here, d))]:
            found.add((rel / name).as_posix())
    return found


def _parse(manifest_file: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise ArtifactError(f"{manifest_file} is not valid JSON ({err}); train again, or fix it.") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{manifest_file} must hold a JSON object, not {type(data).__name__}; train again.")
    return data


def _listed(manifest_file: Path, files: Any) -> dict[str, str]:
    if not isinstance(files, dict) or not files:
        raise ArtifactError(
            f"{manifest_file} must map every artifact file to its sha256 under `files` (like "
            f'{{"files": {{"model.skops": "<sha256>"}}}}), not {json.dumps(files)[:80]}. '
            + _HOW.format(folder=manifest_file.parent).capitalize()
            + "."
        )
    for name, digest in files.items():
        parts = PurePosixPath(name).parts
        if PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name or not parts:
            raise ArtifactError(
                f"{manifest_file} lists {name!r}: file names must be paths inside the artifacts folder, "
                f"without '..'. Write the manifest again: " + _HOW.format(folder=manifest_file.parent) + "."
            )
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise ArtifactError(
                f"{manifest_file} gives {name} the sha256 {digest!r}, which is not 64 hex digits. "
                + _HOW.format(folder=manifest_file.parent).capitalize()
                + "."
            )
    return {str(k): str(v) for k, v in files.items()}


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
