"""`shipway serve`: pre-forked uvicorn workers under gunicorn's arbiter.

gunicorn does what a process supervisor must: load the app once before
forking (so workers share the model's memory), replace a worker that dies,
and on SIGTERM stop accepting, let workers finish in-flight requests within
`serve.graceful_timeout_s`, and exit 0. Each worker runs uvicorn with uvloop
and httptools, the fastest stack measured (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from shipway.core.settings import Settings
from shipway.project import Project
from shipway.serving.jobs import Job
from shipway.serving.logs import configure_logging

if TYPE_CHECKING:
    from shipway.serving.app import Mounted  # imported late at run time: see serve()

__all__ = ["ShipwayWorker", "serve"]

logger = logging.getLogger("shipway.serving")


class ShipwayWorker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_config": None,
    }


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, settings: Settings, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # With preload_app this runs in the arbiter, before any worker forks.
        if self.settings["serve.preload"]:
            self.application.preload()
        return self.application


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _when_ready(server: Any) -> None:
    host, port = server.LISTENERS[0].sock.getsockname()[:2] if server.LISTENERS else ("?", "?")
    logger.info("listening", extra={"url": f"http://{host}:{port}", "workers": server.num_workers})


def serve(
    project: Project,
    jobs: Sequence[Job] = (),
    mounts: Mapping[str, Mounted] | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT; return the exit code. `jobs` run in each worker (serving.jobs);
    `mounts` are ASGI apps served under their path prefixes (see App)."""
    settings = project.settings
    log_config = configure_logging()
    metrics_dir = Path(tempfile.mkdtemp(prefix="shipway-metrics-"))
    # prometheus_client picks its multiprocess mode when first imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    from shipway.serving.app import App

    workers = settings["serve.workers"]
    options = {
        "bind": f"{settings['serve.host']}:{settings['serve.port']}",
        "workers": workers,
        "worker_class": f"{ShipwayWorker.__module__}.{ShipwayWorker.__qualname__}",
        "preload_app": settings["serve.preload"],
        "graceful_timeout": max(1, round(settings["serve.graceful_timeout_s"])),
        "timeout": max(30, int(settings["serve.predict_timeout_s"] * 3)),
        "keepalive": 5,
        "logconfig_dict": log_config,
        "child_exit": _child_exit,
        "when_ready": _when_ready,
        "proc_name": f"shipway-{settings['name']}",
        # gunicorn's control socket is one fixed path per user: two services would collide.
        "control_socket_disable": True,
    }
    app = App(project, jobs, mounts)
    try:
        _Gunicorn(app, settings, options).run()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        sys.stderr.flush()
    return 0
