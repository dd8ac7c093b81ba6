"""Scheduled runs against a live service that report only what changed.

A case that starts failing is reported once, when it starts; it is reported
again only when it passes again. The statuses are kept in memory and, with a
state file, across restarts, so a restarted watcher does not page twice either.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipway.errors import ConfigError, ShipwayError
from shipway.expect.expectations import Check
from shipway.validation.results import FAILING, CaseResult, Changes, Report

__all__ = ["Watch", "watch"]

REACHABLE = "service::reachable"


class Watch:
    """Compares each run with the last one; keeps the statuses in `state_file` when given."""

    def __init__(self, state_file: str | Path | None = None) -> None:
        self.state_file = Path(state_file) if state_file else None
        self.previous: dict[str, str] | None = None
        if self.state_file is not None and self.state_file.is_file():
            try:
                data = json.loads(self.state_file.read_text())
                self.previous = {str(k): str(v) for k, v in data["statuses"].items()}
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise ConfigError(
                    f"the state file {self.state_file} is not a shipway validate state ({err}); "
                    f"delete it to start afresh."
                ) from None

    def update(self, report: Report) -> Changes:
        current = {r.id: r.status for r in report.results}
        before = self.previous or {}
        was_failing = {k for k, s in before.items() if s in FAILING}
        changes = Changes(
            newly_failing=[r for r in report.results if r.failing and r.id not in was_failing],
            newly_passing=[r for r in report.results if not r.failing and r.id in was_failing],
            still_failing=sum(1 for r in report.results if r.failing and r.id in was_failing),
        )
        if REACHABLE in was_failing and REACHABLE not in current:
            back = CaseResult(
                "service", "reachable", "passed", [Check("the service answers", True, "it answers")], [], []
            )
            changes.newly_passing.insert(0, back)
        self.previous = current
        if self.state_file is not None:
            self._save(current, report)
        return changes

    def _save(self, statuses: dict[str, str], report: Report) -> None:
        assert self.state_file is not None
        data = {"version": 1, "updated_at": time.time(), "targets": report.targets, "statuses": statuses}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_name(self.state_file.name + ".tmp")
        partial.write_text(json.dumps(data, indent=1, default=str))
        os.replace(partial, self.state_file)  # a crash mid-write leaves the old state, not half a file


def unreachable(err: ShipwayError, description: str) -> Report:
    """A run that could not reach the service, as one failing case, so it is reported like one."""
    check = Check("the service answers", False, str(err))
    result = CaseResult("service", "reachable", "error", [check], [description], [])
    return Report([result], [{"target": description, "ids": {}}], time.time(), 0.0)


def watch(
    run: Callable[[], Report],
    every_s: float,
    on_run: Callable[[Report, Changes, int], Any],
    *,
    max_runs: int | None = None,
    state_file: str | Path | None = None,
    description: str = "the service",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Report | None:
    """Call `run` every `every_s` seconds (at most `max_runs` times); `on_run(report, changes, n)` after each.

    A run that raises a ShipwayError (the service is down) counts as one failing
    case, `service::reachable`, so an outage is reported once and its end once.
    """
    tracker = Watch(state_file)
    last: Report | None = None
    runs = 0
    while max_runs is None or runs < max_runs:
        started = clock()
        try:
            last = run()
        except ShipwayError as err:
            last = unreachable(err, description)
        on_run(last, tracker.update(last), runs)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        sleep(max(0.0, every_s - (clock() - started)))
    return last
