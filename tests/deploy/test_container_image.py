"""`shipway build` makes a real image with buildah, and the image's entrypoint answers.

No registry can be pulled from here, so the base is made from Debian's packages: `mmdebstrap
--variant=minbase --include=python3` of this machine's Debian release, imported into buildah's
storage and kept there (and its tarball in the temp folder) between runs. The image is built with
chroot isolation (no daemon, no cgroups needed), mounted, and its configured entrypoint is run
from its root file system with chroot, as its configured user, in its environment and working
directory. `make test` installs buildah and mmdebstrap; the test skips only when they cannot run
(not root, not Debian, buildah refusing to start).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SERVICES, SHIPWAY, free_port
from packaging.utils import canonicalize_name

from shipway.core.artifacts import write_manifest
from shipway.core.settings import load_settings
from shipway.deploy.container import stop_timeout

BASE_PACKAGES = "python3"
MIRROR = "http://deb.debian.org/debian"


def debian_release() -> str | None:
    fields = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )  # fmt: skip
    if fields.get("ID") != "debian":
        return None
    return fields.get("VERSION_CODENAME", "").strip('"') or None


def run(*cmd: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def tools_or_skip() -> str:
    if os.geteuid() != 0:
        pytest.skip("buildah's chroot builds and running the image with chroot need root; this run is not root")
    release = debian_release()
    if release is None:
        pytest.skip("the base image is made from this machine's Debian release, and this machine is not Debian")
    missing = [tool for tool in ("buildah", "mmdebstrap", "chroot") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: `make test` installs them (apt-get install buildah mmdebstrap)"
        )
    info = run("buildah", "info")
    if info.returncode != 0:
        pytest.skip(f"buildah is installed but cannot run here: {info.stderr.strip()}")
    return release


def base_image(release: str) -> str:
    """A base image with python3 from Debian's packages, made once per release and package list."""
    key = hashlib.sha256(f"{release} minbase {BASE_PACKAGES}".encode()).hexdigest()[:10]
    image = f"localhost/shipway-test-base:{release}-{key}"
    if run("buildah", "inspect", "--type", "image", image).returncode == 0:
        return image
    tar = Path(tempfile.gettempdir()) / f"shipway-test-base-{release}-{key}.tar"
    if not tar.exists():
        partial = tar.with_suffix(f".{os.getpid()}.partial")
        made = run(
            "mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "--format=tar",
            release, str(partial), MIRROR,
        )  # fmt: skip
        if made.returncode != 0:
            partial.unlink(missing_ok=True)
            pytest.fail(f"mmdebstrap could not make the base from {MIRROR}:\n{made.stderr[-3000:]}")
        partial.rename(tar)
    container = run("buildah", "from", "scratch").stdout.strip()
    steps = [
        ("buildah", "add", "--quiet", container, str(tar), "/"),
        ("buildah", "config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", container),
        ("buildah", "commit", "--quiet", "--rm", container, image),
    ]
    for step in steps:
        done = run(*step)
        assert done.returncode == 0, f"{' '.join(step)}: {done.stderr}"
    return image


@contextlib.contextmanager
def mounted(image: str) -> Iterator[Path]:
    """The image's root file system, as buildah mounts a working container of it."""
    container = run("buildah", "from", "--pull-never", "--name", f"shipway-test-{uuid.uuid4().hex[:8]}", image)
    assert container.returncode == 0, container.stderr
    name = container.stdout.strip()
    try:
        mount = run("buildah", "mount", name)
        assert mount.returncode == 0, mount.stderr
        yield Path(mount.stdout.strip())
    finally:
        run("buildah", "umount", name)
        run("buildah", "rm", name)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the image's entrypoint exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(url + "/ready", timeout=1)
            if answer.status_code == 200:
                return dict(answer.json())
        time.sleep(0.1)
    raise AssertionError(f"the image's service was not ready after {timeout} s:\n{log.read_text()}")


@pytest.mark.timeout(900)  # a first run makes the base from Debian's mirror (minutes); later runs reuse it
def test_the_built_image_runs_its_entrypoint_as_its_user_and_answers(tmp_path: Path) -> None:
    release = tools_or_skip()
    base = base_image(release)
    project = Path(shutil.copytree(SERVICES / "router", tmp_path / "router"))
    (project / "artifacts").mkdir()
    (project / "artifacts" / "weights.json").write_text('{"w": 1}')
    write_manifest(project / "artifacts", {"version": "router-v1"})
    (project / "requirements.txt").write_text("pyyaml\n")
    (project / ".shipway").mkdir()
    (project / ".shipway" / "local.db").write_text("not for the image")
    image = f"localhost/shipway-test-router:{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "BUILDAH_ISOLATION": "chroot"}
    built = run(*SHIPWAY, "build", "--target", str(project), "--base", base, "--image", image, env=env)
    try:
        assert built.returncode == 0, built.stdout + built.stderr
        assert f"built {image}" in built.stdout and "with buildah" in built.stdout
        check_image(project, image)
    finally:
        run("buildah", "rmi", "--force", image)


def check_image(project: Path, image: str) -> None:
    inspected = json.loads(run("buildah", "inspect", "--type", "image", image).stdout)
    config = inspected["OCIv1"]["config"]
    settings = load_settings(project)
    assert config["User"] == "10001:10001"
    assert config["StopSignal"] == "SIGTERM"
    assert config["Labels"]["io.shipway.stop-timeout"] == str(stop_timeout(settings))
    assert config["Labels"]["io.shipway.model-version"] == "router-v1"
    lock = (project / ".shipway" / "build" / "requirements.lock").read_text().splitlines()
    pins = dict(line.split(" ")[0].split("==") for line in lock if not line.startswith("#"))
    env = [*config["Env"], "SHIPWAY_WORKERS=2"]
    with mounted(image) as root:
        assert not (root / "srv/app/.shipway/local.db").exists(), "the project's local state is not in the image"
        assert (root / "srv/app/artifacts/manifest.json").is_file()
        # env -i -C: the image's environment only, in its working directory.
        chroot = [shutil.which("chroot") or "chroot", f"--userspec={config['User']}", str(root), "/usr/bin/env", "-i"]
        chroot += ["-C", config["WorkingDir"], *env]
        # The image holds exactly the locked versions.
        listed = run(*chroot, "python", "-c", "import importlib.metadata as m, json; "
                     "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        installed = {canonicalize_name(k): v for k, v in json.loads(listed.stdout).items()}
        assert installed == pins
        # The user reads the project but cannot change it; it writes only its state folder.
        assert run(*chroot, "/bin/sh", "-c", "test -r service.py && test ! -w service.py").returncode == 0
        assert run(*chroot, "/bin/sh", "-c", "test -w .shipway && test ! -w .").returncode == 0
        port = free_port()
        log = project.parent / "image.log"
        entry = [*chroot, *config["Entrypoint"], "--port", str(port)]
        with log.open("wb") as out:
            proc = subprocess.Popen(entry, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            ready = wait_ready(url, proc, log)
            assert ready["ids"]["model_version"] == "router-v1"
            answer = httpx.post(url + "/predict", json={"text": "card_arrival 0.9"}, timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["intent"] == "card_arrival"
            assert answer.json()["decision"]["queue"] == "urgent"  # the project's rules, in the image
            status = Path(f"/proc/{proc.pid}/status").read_text()
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            assert uid_line.split()[1:] == ["10001"] * 4, uid_line
            assert '"workers":2' in log.read_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log.read_text()
            assert "worker stopped" in log.read_text()
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
