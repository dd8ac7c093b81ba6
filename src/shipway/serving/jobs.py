"""Background jobs: plain callables a worker runs on a schedule, on a thread of their own.

The CLI layer hands them in (alert evaluation, for one), so serving runs them without
knowing what they are or importing the capability they come from. A job that raises is
logged and runs again at its next time; it never stops the worker or the other jobs.
A job that has `stop()` is told when the worker stops (before the thread is joined), and
one that has `close()` is closed after.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["Job", "Jobs"]

logger = logging.getLogger("shipway.serving")

Job = tuple[float, Callable[[], object]]  # (every how many seconds, what to call)


class Jobs:
    """Runs each job every `interval` seconds, the first time right after `start()`."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = list(jobs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.jobs or self._thread is not None:
            return
        self._stop.clear()
        # A daemon: a job stuck on a slow network call must not hold up the worker's exit.
        self._thread = threading.Thread(target=self._run, name="shipway-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for _, job in self.jobs:
            getattr(job, "stop", _nothing)()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return  # a job still running keeps what it holds; the process exit frees it
            self._thread = None
        for _, job in self.jobs:
            try:
                getattr(job, "close", _nothing)()
            except Exception:
                logger.exception("closing a background job failed", extra={"job": _name(job)})

    def _run(self) -> None:
        due = [time.monotonic()] * len(self.jobs)
        while not self._stop.is_set():
            now = time.monotonic()
            for i, (interval, job) in enumerate(self.jobs):
                if now < due[i]:
                    continue
                try:
                    job()
                except Exception:
                    logger.exception(
                        "background job failed; it runs again in %g s", interval, extra={"job": _name(job)}
                    )
                # A run that overran its interval skips the runs it missed rather than bunching them.
                due[i] = due[i] + interval if due[i] + interval > time.monotonic() else time.monotonic() + interval
            self._stop.wait(max(0.0, min(due) - time.monotonic()))


def _nothing() -> None:
    pass


def _name(job: Callable[[], object]) -> str:
    return getattr(job, "__qualname__", None) or type(job).__qualname__
