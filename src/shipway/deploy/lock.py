"""The image's locked dependencies: what runs here, file for file.

The lock is the dependency closure of shipway (with the extras the project asks for) and of the
project's own requirements, at the versions installed in the environment that runs `shipway
build`: the one the tests and the validation suites passed in. Every package is staged as a wheel
in the build context and pinned by its sha256, so the image installs exactly those files, with
no index and no network (`pip install --no-index --require-hashes`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from shipway.core.artifacts import file_sha256
from shipway.errors import DeployError

__all__ = ["Lock", "lock_closure", "project_requirements", "stage_wheels"]


@dataclass(frozen=True, slots=True)
class Lock:
    """The staged wheels, by canonical name, and the text of requirements.lock."""

    wheels: dict[str, Path]
    pins: dict[str, str]
    pip_wheel: Path

    def text(self) -> str:
        lines = ["# written by `shipway build`: the versions installed where it ran, each wheel by its sha256"]
        for name in sorted(self.pins):
            lines.append(f"{name}=={self.pins[name]} --hash=sha256:{file_sha256(self.wheels[name])}")
        return "\n".join(lines) + "\n"


def project_requirements(file: Path) -> list[Requirement]:
    """The requirements a project lists in its requirements file (none when it has no file)."""
    if not file.is_file():
        return []
    out = []
    for number, raw in enumerate(file.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as err:
            raise DeployError(
                f"{file}:{number}: {line!r} is not a requirement ({err}). Write one package a line, "
                "like `scikit-learn>=1.5`; options (-r, -e, --index-url) are not read."
            ) from err
        if req.url:
            raise DeployError(
                f"{file}:{number}: {line!r} names a URL; the lock takes packages installed here by name. "
                "Install it, then write its name."
            )
        out.append(req)
    return out


def lock_closure(extras: list[str], requirements: list[Requirement]) -> dict[str, str]:
    """Canonical name -> installed version for shipway[extras], the requirements, and everything
    they need on this machine (markers evaluated here)."""
    pins: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str], str]] = [("shipway", frozenset(extras), "shipway itself")]
    todo += [(req.name, frozenset(req.extras), f"the requirement {req}") for req in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted, why = todo.pop()
        key = canonicalize_name(name)
        if (key, wanted) in seen:
            continue
        seen.add((key, wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise DeployError(
                f"{name} ({why}) is not installed here, so its version cannot be locked. "
                f"Install it where you run `shipway build` (pip install {name!r}), run the tests, then build."
            ) from None
        pins[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            contexts = [{"extra": extra} for extra in sorted(wanted)] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(ctx) for ctx in contexts):
                todo.append((req.name, frozenset(req.extras), f"needed by {dist.metadata['Name']}"))
    return pins


def stage_wheels(pins: dict[str, str], into: Path) -> Lock:
    """Put one wheel per pinned package into `into` (taken from the configured index, or built
    from a local source such as an editable install), and a wheel of pip to install them with."""
    into.mkdir(parents=True, exist_ok=True)
    for stale in into.glob("*.whl"):
        stale.unlink()
    with tempfile.TemporaryDirectory(prefix="shipway-sources-") as scratch:
        specs = []
        for name, version in sorted(pins.items()):
            source = _local_source(name)
            # A copy: building a wheel writes build/ and *.egg-info into the folder it builds.
            specs.append(str(_copy_source(source, Path(scratch) / name)) if source else f"{name}=={version}")
        pip_version = metadata.version("pip") if _installed("pip") else None
        specs.append(f"pip=={pip_version}" if pip_version else "pip")
        _pip(["wheel", "--no-deps", "--wheel-dir", str(into), *specs])
    wheels: dict[str, Path] = {}
    for file in into.glob("*.whl"):
        name, _, _, _ = parse_wheel_filename(file.name)
        wheels[canonicalize_name(name)] = file
    missing = sorted(set(pins) - set(wheels))
    if missing:
        raise DeployError(f"pip staged no wheel for {', '.join(missing)} in {into}; see pip's output above.")
    pip_wheel = wheels.pop("pip")
    pins = {name: version for name, version in pins.items() if name != "pip"}
    return Lock(wheels={name: wheels[name] for name in pins}, pins=pins, pip_wheel=pip_wheel)


def _local_source(name: str) -> Path | None:
    """The folder an installed package was installed from (`pip install -e .` or a local path),
    which the index does not have: pip builds its wheel from there."""
    try:
        raw = metadata.distribution(name).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not raw:
        return None
    url = json.loads(raw).get("url", "")
    if not url.startswith("file://"):
        return None
    path = Path(re.sub(r"^file://", "", url))
    return path if path.is_dir() else None


def _copy_source(source: Path, into: Path) -> Path:
    skip = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", ".shipway", "__pycache__", "*.egg-info")
    return Path(shutil.copytree(source, into, ignore=skip))


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location"))
        raise DeployError(
            f"pip {args[0]} failed (exit status {done.returncode}) while staging the image's wheels; the index "
            f"pip uses here must hold every locked version. pip said:\n{said[-3000:]}"
        )
