"""Running a project's step (the dataset step, the training step) as a child process.

The step's output is shown as it comes, with the time since the step started in front of
each line, so a long step shows progress, and kept in a log file for the run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipway.errors import ConfigError

__all__ = ["HEARTBEAT_S", "StepResult", "input_fields", "run_step", "step_argv"]

HEARTBEAT_S = 15.0  # a step silent this long is shown to be still running


@dataclass
class StepResult:
    """How a step ended: its exit code, its duration and its last lines of output."""

    returncode: int
    seconds: float
    tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def step_argv(command: str, setting: str) -> list[str]:
    """The command's words; a leading `python` runs with this interpreter (the project's venv)."""
    try:
        argv = shlex.split(command)
    except ValueError as err:
        raise ConfigError(
            f"the {setting} setting {command!r} is not a command line ({err}); quote it as a shell would"
        ) from None
    if not argv:
        raise ConfigError(
            f"the {setting} setting is empty; set it to the command that runs the step, e.g. 'python train.py'"
        )
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def run_step(
    command: str,
    setting: str,
    root: Path,
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> StepResult:
    """Run `command` in `root`, its output (stdout and stderr) echoed and written to `log`."""
    argv = step_argv(command, setting)
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=30)
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    log_file = open(log, "w", encoding="utf-8") if log is not None else None
    try:
        try:
            process = subprocess.Popen(
                argv,
                cwd=root,
                env=child_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as err:
            raise ConfigError(
                f"cannot run the {setting} setting {command!r} in {root}: {err}; check the command and that its file exists"
            ) from None
        assert process.stdout is not None
        last = [time.monotonic()]
        quiet = threading.Event()
        if echo is not None:
            threading.Thread(target=_heartbeat, args=(echo, started, last, quiet), daemon=True).start()
        try:
            for line in process.stdout:
                last[0] = time.monotonic()
                tail.append(line)
                if log_file is not None:
                    log_file.write(line)
                if echo is not None:
                    echo(f"  [{time.monotonic() - started:6.1f}s] {line.rstrip()}")
            returncode = process.wait()
        finally:
            quiet.set()
    finally:
        if log_file is not None:
            log_file.close()
    return StepResult(returncode, time.monotonic() - started, "".join(tail))


def _heartbeat(echo: Callable[[str], None], started: float, last: list[float], done: threading.Event) -> None:
    """While the step prints nothing, say every HEARTBEAT_S that it is still running."""
    while not done.wait(HEARTBEAT_S):
        if time.monotonic() - last[0] >= HEARTBEAT_S:
            echo(f"  [{time.monotonic() - started:6.1f}s] ... still running")


def input_fields(hint: Any) -> dict[str, str]:
    """The fields of a service's input type and their type names (a pydantic model's fields)."""
    fields = getattr(hint, "model_fields", None)
    if not isinstance(fields, dict):
        return {}
    return {name: _type_name(info.annotation) for name, info in fields.items()}


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
