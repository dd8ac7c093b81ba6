"""The runs this process has open, and what ends them: the run's exit, an uncaught error, exit.

An uncaught exception ends every open run as failed (with the last lines of its traceback)
before the previous hook prints it; at exit the runs still open end as finished.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import traceback
from types import TracebackType
from typing import Protocol

from shipway.errors import ShipwayError

__all__ = ["describe", "forget", "latest", "track"]


class _Endable(Protocol):
    def end(self, status: str = "finished", error: str | None = None) -> None: ...


_open: list[_Endable] = []
_lock = threading.Lock()
_hooks_installed = False


def track(run: _Endable) -> None:
    """Count `run` as open until `forget(run)`; the first one installs the exit hooks."""
    with _lock:
        _open.append(run)
        _install_hooks()


def forget(run: _Endable) -> None:
    with _lock:
        if run in _open:
            _open.remove(run)


def latest() -> _Endable | None:
    """The newest run still open."""
    with _lock:
        return _open[-1] if _open else None


def describe(exc_type: type[BaseException] | None, exc: BaseException, tb: TracebackType | None) -> str:
    """The last lines of a traceback, as a failed run records them."""
    lines = traceback.format_exception(exc_type or type(exc), exc, tb)
    return "".join(lines[-20:]).strip()


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def on_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        for run in list(_open):
            with contextlib.suppress(ShipwayError):
                run.end("failed", describe(exc_type, exc, tb))
        previous(exc_type, exc, tb)

    sys.excepthook = on_uncaught
    atexit.register(_end_open_runs)


def _end_open_runs() -> None:
    for run in list(_open):
        with contextlib.suppress(ShipwayError):
            run.end()
