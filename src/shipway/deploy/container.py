"""`shipway build`: the project as an OCI image, built without a daemon where buildah is present.

The build context lives in `.shipway/build/` of the project:

    Containerfile      written from the settings (below)
    requirements.lock  every package, version and wheel sha256 (see `lock`)
    wheels/            the locked wheels, bind-mounted while installing, so no layer keeps them
    project/           the project's files; the artifacts folder too unless it is mounted

The image runs as uid 10001 in a virtual environment at /opt/shipway, with the project read-only
at /srv/app and only /srv/app/.shipway (spool, embedded store) and /tmp writable. Its entrypoint,
`python -m shipway.deploy.start`, starts as many workers as the CPU limit allows and execs
`shipway serve`. SIGTERM drains it (docs/serving.md#shutdown); the label
`io.shipway.stop-timeout` says how long a runtime should wait before it kills.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shipway.core.artifacts import verify_artifacts
from shipway.core.service import read_ids
from shipway.core.settings import Settings
from shipway.deploy.lock import lock_closure, project_requirements, stage_wheels
from shipway.errors import DeployError

__all__ = [
    "APP_DIR",
    "UID",
    "Build",
    "build_context",
    "build_image",
    "containerfile",
    "default_image",
    "dns_name",
    "pick_engine",
    "stop_timeout",
]

APP_DIR = "/srv/app"
VENV = "/opt/shipway"
UID = 10001
ENGINES = ("buildah", "podman", "docker")
# Never copied into the image: the project's local state, version control, environments, caches.
_SKIP = {".shipway", ".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


@dataclass(frozen=True, slots=True)
class Build:
    image: str
    context: Path
    engine: str | None  # None: the context was written, no image built
    image_id: str | None = None


def default_image(settings: Settings, model: Path | None = None) -> str:
    """`build.image`, else localhost/<name>:<model version> (or :latest without a model)."""
    if settings["build.image"]:
        return str(settings["build.image"])
    version = read_ids(model or settings.path("artifacts")).get("model_version") or "latest"
    tag = "".join(c if c.isalnum() or c in "._-" else "-" for c in version)[:128]
    return f"localhost/{dns_name(settings['name'])}:{tag}"


def stop_timeout(settings: Settings) -> int:
    """Seconds a runtime should wait after SIGTERM: the server's drain plus a margin to exit."""
    return math.ceil(settings["serve.graceful_timeout_s"]) + 5


def containerfile(settings: Settings, pip_wheel: str, base: str | None = None, model: Path | None = None) -> str:
    """The Containerfile's text (a Dockerfile too) for this project."""
    port = settings["serve.port"]
    if not port:
        raise DeployError("serve.port is 0 (a random port); a container needs a fixed one. Set serve.port.")
    ids = read_ids(model or settings.path("artifacts"))
    labels = {
        "org.opencontainers.image.title": settings["name"],
        "org.opencontainers.image.version": ids.get("model_version") or "",
        "io.shipway.model-version": ids.get("model_version") or "",
        "io.shipway.dataset-version": ids.get("dataset_version") or "",
        "io.shipway.run-id": ids.get("run_id") or "",
        "io.shipway.artifacts": settings["build.artifacts"],
        "io.shipway.stop-timeout": str(stop_timeout(settings)),
    }
    label_lines = " \\\n      ".join(f'{key}="{value}"' for key, value in labels.items())
    wheels = "/tmp/wheels"
    return f"""\
# Written by `shipway build` from shipway.toml; change the settings (docs/settings.md) and build
# again rather than edit this file.
FROM {base or settings["build.base"]}

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp

# A user of its own, without a login: the service never runs as root.
RUN echo "shipway:x:{UID}:{UID}:shipway:/tmp:/usr/sbin/nologin" >> /etc/passwd \\
 && echo "shipway:x:{UID}:" >> /etc/group

# The locked wheels, installed with no index: the image holds exactly what the lock names.
RUN --mount=type=bind,source=wheels,target={wheels} \\
    python3 -m venv --without-pip {VENV} \\
 && {VENV}/bin/python {wheels}/{pip_wheel}/pip install --no-index --no-cache-dir --require-hashes \\
      --find-links {wheels} -r {wheels}/requirements.lock

COPY project/ {APP_DIR}/
RUN install -d -o {UID} -g {UID} {APP_DIR}/.shipway

LABEL {label_lines}
USER {UID}:{UID}
WORKDIR {APP_DIR}
EXPOSE {port}
# gunicorn drains on SIGTERM within serve.graceful_timeout_s = {settings["serve.graceful_timeout_s"]:g} s:
# give it `--stop-timeout {stop_timeout(settings)}` (docker, podman run), or Kubernetes' grace period.
STOPSIGNAL SIGTERM
ENTRYPOINT ["{VENV}/bin/python", "-m", "shipway.deploy.start", "{APP_DIR}"]
"""


def build_context(settings: Settings, base: str | None = None, model: Path | None = None) -> Path:
    """Write `.shipway/build/` for the project: lock, wheels, project files, Containerfile. `model`
    (a registered version's verified folder) replaces the project's artifacts folder in the image."""
    if not sys.platform.startswith("linux"):
        raise DeployError(
            f"shipway build stages wheels for the machine it runs on ({sys.platform}), and the image runs "
            "Linux: run it on Linux with the same CPU architecture as the cluster (in CI, for instance)."
        )
    root = settings.root
    artifacts = model or settings.path("artifacts")
    verify_artifacts(artifacts)  # the image never holds a folder that does not match its manifest
    context = root / ".shipway" / "build"
    extras = [e.strip() for e in settings["build.extras"].split(",") if e.strip()]
    pins = lock_closure(extras, project_requirements(root / settings["build.requirements"]))
    lock = stage_wheels(pins, context / "wheels")
    (context / "wheels" / "requirements.lock").write_text(lock.text())
    shutil.copyfile(context / "wheels" / "requirements.lock", context / "requirements.lock")
    _copy_project(settings, context / "project", model)
    (context / "Containerfile").write_text(containerfile(settings, lock.pip_wheel.name, base, model))
    return context


def build_image(context: Path, image: str, engine_setting: str = "auto") -> Build:
    """Build the image from a written context with the first engine that can run here."""
    engine = pick_engine(engine_setting)
    file = context / "Containerfile"
    if engine == "docker":
        cmd = ["docker", "build", "-f", str(file), "-t", image, str(context)]
    else:  # buildah and podman take the same flags; --layers caches the dependency step
        cmd = [engine, "build", "--layers", "-f", str(file), "-t", image, str(context)]
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        raise DeployError(
            f"{engine} build failed (exit status {done.returncode}); its output above says at which step. "
            f"The context is in {context}: `{' '.join(cmd)}` runs it again."
            + (
                " If a RUN step failed to create its container (cgroups, namespaces), as inside CI runners and "
                "other containers, set BUILDAH_ISOLATION=chroot."
                if engine == "buildah" and not os.environ.get("BUILDAH_ISOLATION")
                else ""
            )
        )
    image_id = _image_id(engine, image)
    return Build(image=image, context=context, engine=engine, image_id=image_id)


def pick_engine(setting: str = "auto") -> str:
    """The engine to build with: the setting, or the first of buildah, podman, docker that runs."""
    if setting != "auto":
        if shutil.which(setting) is None:
            raise DeployError(f"build.engine is {setting!r} but {setting} is not installed here. {_INSTALL}")
        return setting
    for engine in ENGINES:
        if shutil.which(engine) is None:
            continue
        if engine == "docker" and not _docker_answers():
            continue
        return engine
    found = " (docker is installed, but its engine does not answer `docker info`)" if shutil.which("docker") else ""
    raise DeployError(f"no container engine can build here{found}. {_INSTALL}")


_INSTALL = "Install buildah (apt-get install buildah: it builds without a daemon), podman, or docker with its engine."


def _docker_answers() -> bool:
    done = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return done.returncode == 0


def _image_id(engine: str, image: str) -> str | None:
    if engine == "docker":
        cmd = ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    else:
        cmd = [engine, "images", "--noheading", "--no-trunc", "--format", "{{.ID}}", image]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    words = done.stdout.split()
    return words[0] if done.returncode == 0 and words else None


def _copy_project(settings: Settings, into: Path, model: Path | None) -> None:
    root = settings.root
    artifacts = settings.path("artifacts")
    include = settings["build.artifacts"] == "include"
    if include and artifacts.is_dir() and not artifacts.is_relative_to(root):
        raise DeployError(
            f"the artifacts folder {artifacts} is outside the project {root}, so the image cannot hold it at "
            'the same place. Set `artifacts` to a folder inside the project, or build.artifacts = "mount".'
        )
    skip = {into.resolve(), (root / settings["kubernetes.out"]).resolve()}
    if not include:
        skip.add(artifacts)
    if into.exists():
        shutil.rmtree(into)

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).resolve()
        return {n for n in names if n in _SKIP or n.endswith(".pyc") or (here / n).resolve() in skip}

    if model is not None and include:
        skip.add(artifacts)
    shutil.copytree(root, into, ignore=ignore, symlinks=False)
    if model is not None and include:
        shutil.copytree(model, into / artifacts.relative_to(root), symlinks=False)
    # Readable by the image's user, written by none: set here, as a chmod in the image would copy every file.
    for folder, _, files in os.walk(into):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, (os.stat(path).st_mode & 0o755) | 0o444)


def dns_name(name: str) -> str:
    """A name Kubernetes and registries take: lowercase letters, digits and dashes."""
    out = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    while "--" in out:
        out = out.replace("--", "-")
    if not out:
        raise DeployError(f"the service name {name!r} has no letter or digit; set `name` in shipway.toml.")
    return out[:63].rstrip("-")
