"""The parts of `shipway build` that need no engine: the lock, the Containerfile, the entrypoint's
worker count. The image itself is built and run in test_container_image.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from conftest import SERVICES, SHIPWAY
from packaging.requirements import Requirement

from shipway.core.settings import load_settings
from shipway.deploy.container import containerfile, default_image, pick_engine, stop_timeout
from shipway.deploy.lock import lock_closure, project_requirements
from shipway.deploy.start import cpu_quota, serve_command, worker_count
from shipway.errors import DeployError


def test_the_lock_holds_the_installed_version_of_everything_shipway_needs() -> None:
    pins = lock_closure(["postgres"], [Requirement("pyyaml")])
    for name in ("shipway", "pydantic", "pydantic-core", "gunicorn", "uvicorn", "psycopg", "psycopg-binary", "pyyaml"):
        assert pins[name] == metadata.version(name), name
    # Only what is needed: a dev tool installed here is not in the image.
    assert "pytest" not in pins and "mypy" not in pins
    assert "psycopg" not in lock_closure([], [])


def test_a_requirement_not_installed_here_cannot_be_locked(tmp_path: Path) -> None:
    file = tmp_path / "requirements.txt"
    file.write_text("# the project's own\nnot-a-package-shipway-knows>=1\n")
    with pytest.raises(DeployError, match=r"not-a-package-shipway-knows \(the requirement .*is not installed here"):
        lock_closure([], project_requirements(file))
    file.write_text("pyyaml\nmodel @ https://example.com/model.whl\n")
    with pytest.raises(DeployError, match=r"requirements.txt:2: .* names a URL"):
        project_requirements(file)
    file.write_text("-e .\n")
    with pytest.raises(DeployError, match=r"requirements.txt:1: '-e \.' is not a requirement"):
        project_requirements(file)


def test_the_containerfile_runs_unprivileged_and_drains_like_the_server(tmp_path: Path) -> None:
    project = Path(shutil.copytree(SERVICES / "router", tmp_path / "router"))
    (project / "shipway.toml").write_text(
        (project / "shipway.toml").read_text() + "\n[serve]\ngraceful_timeout_s = 12.5\n"
    )
    settings = load_settings(project)
    text = containerfile(settings, "pip-1-py3-none-any.whl", "localhost/base:1")
    lines = text.splitlines()
    assert "FROM localhost/base:1" in lines
    assert "USER 10001:10001" in lines and "STOPSIGNAL SIGTERM" in lines
    assert stop_timeout(settings) == 13 + 5
    assert f'io.shipway.stop-timeout="{stop_timeout(settings)}"' in text
    assert "--no-index" in text and "--require-hashes" in text
    assert lines[-1] == 'ENTRYPOINT ["/opt/shipway/bin/python", "-m", "shipway.deploy.start", "/srv/app"]'
    assert default_image(settings).startswith("localhost/router:")
    (project / "shipway.toml").write_text('name = "router"\n[serve]\nport = 0\n')
    with pytest.raises(DeployError, match=r"serve\.port is 0"):
        containerfile(load_settings(project), "pip.whl")


def test_workers_follow_the_environment_then_the_cgroup_quota(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(v2) == 1.5
    assert worker_count({}, v2) == 2  # rounded up, as Kubernetes rounds the downward API's limit
    assert worker_count({"SHIPWAY_WORKERS": "3"}, v2) == 3
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(v2) is None
    assert worker_count({}, v2) == len(__import__("os").sched_getaffinity(0))
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("250000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert worker_count({}, tmp_path / "v1") == 3
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_quota(tmp_path / "v1") is None
    with pytest.raises(SystemExit, match="SHIPWAY_WORKERS='two' must be a whole number"):
        worker_count({"SHIPWAY_WORKERS": "two"}, v2)
    command = serve_command("/srv/app", ["--port", "9000"], 4)
    assert command[:3] == [sys.executable, "-m", "shipway"]
    assert command[3:] == ["serve", "/srv/app", "--host", "0.0.0.0", "--workers", "4", "--port", "9000"]


def test_an_engine_that_is_not_installed_is_named_with_the_fix() -> None:
    missing = next((e for e in ("podman", "docker", "buildah") if shutil.which(e) is None), None)
    if missing is None:
        pytest.skip("every engine is installed on this machine: none to be missing")
    with pytest.raises(DeployError, match=rf"build.engine is '{missing}' but {missing} is not installed here"):
        pick_engine(missing)


def test_a_docker_without_its_engine_is_passed_over_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0:
        pytest.skip("needs the docker command without a running engine, as on this test machine")
    only = tmp_path / "bin"
    only.mkdir()
    (only / "docker").symlink_to(docker)
    monkeypatch.setenv("PATH", str(only))  # buildah and podman out of sight: only the docker CLI
    with pytest.raises(DeployError, match=r"docker is installed, but its engine does not answer .*Install buildah"):
        pick_engine("auto")


def test_shipway_build_refuses_a_requirement_it_cannot_lock_before_building(tmp_path: Path) -> None:
    project = Path(shutil.copytree(SERVICES / "router", tmp_path / "router"))
    (project / "requirements.txt").write_text("not-a-package-shipway-knows\n")
    done = subprocess.run(
        [*SHIPWAY, "build", "--target", str(project), "--context-only"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert (
        "error: not-a-package-shipway-knows (the requirement not-a-package-shipway-knows) is not installed"
        in done.stderr
    )
    assert "pinned by tag only" in done.stderr  # the default base names no digest
    assert not (project / ".shipway" / "build" / "Containerfile").exists()
