"""The container's entrypoint: `shipway serve` with one worker per CPU the container may use.

    python -m shipway.deploy.start /srv/app [serve flags...]

The workers are, first found: SHIPWAY_WORKERS (Kubernetes sets it from the container's CPU
limit through the downward API, rounded up); the cgroup's CPU quota (`docker run --cpus`,
`podman run --cpus`), rounded up; the CPUs this process may run on. Then it replaces itself with
`shipway serve PROJECT --host 0.0.0.0 --workers N [flags]`, so SIGTERM reaches gunicorn's
arbiter directly and drains it.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["cpu_quota", "serve_command", "worker_count"]

WORKERS_ENV = "SHIPWAY_WORKERS"


def cpu_quota(cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPUs the cgroup's quota allows (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us`), or None
    when there is no quota."""
    v2 = cgroup / "cpu.max"
    if v2.is_file():
        quota, _, period = v2.read_text().strip().partition(" ")
        if quota == "max" or not period:
            return None
        return int(quota) / int(period)
    for folder in (cgroup / "cpu", cgroup / "cpu,cpuacct", cgroup):
        quota_file, period_file = folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us"
        if quota_file.is_file() and period_file.is_file():
            quota_us = int(quota_file.read_text())
            return None if quota_us <= 0 else quota_us / int(period_file.read_text())
    return None


def worker_count(environ: Mapping[str, str], cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """How many workers to start (see the module docstring for the order)."""
    given = environ.get(WORKERS_ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise SystemExit(f"error: {WORKERS_ENV}={given!r} must be a whole number of workers, at least 1.")
        return int(given)
    quota = cpu_quota(cgroup)
    if quota is not None:
        return max(1, math.ceil(quota))
    return max(1, len(os.sched_getaffinity(0)))


def serve_command(project: str, flags: list[str], workers: int) -> list[str]:
    return [sys.executable, "-m", "shipway", "serve", project, "--host", "0.0.0.0", "--workers", str(workers), *flags]


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m shipway.deploy.start PROJECT [shipway serve flags...]")
    command = serve_command(argv[0], argv[1:], worker_count(os.environ))
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
