"""Drift over a logged window too large for one process: summarise its parts, merge, compare.

    job = DriftJob(profile_path)
    summary = merged(run(job, Source.open("exported-log/"), engine="ray", jobs=8))
    report = compare_summary(Profile.load(profile_path), summary, thresholds)

Each worker loads the profile once, reads its batches of logged rows (the columns
`inputs`, `outputs`, `ts`, and optionally `status` and `service`) and summarises every
profiled feature (summaries.py); the summaries merge into the window's, whatever the split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

import orjson

from shipway.common.merging import greatest, least, merge_fields
from shipway.monitoring.drift._checks import Part, part_of
from shipway.monitoring.drift.profile import Profile
from shipway.monitoring.drift.window import Window

__all__ = ["DriftJob", "WindowSummary", "merged"]


@dataclass(slots=True)
class WindowSummary:
    """A window's features as summaries that merge, with the window's row counts and times."""

    parts: dict[str, Part]
    n_rows: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    excluded: dict[str, int] = field(default_factory=dict)

    def merge(self, other: WindowSummary) -> WindowSummary:
        """Parts merge by feature, row counts add (common/merging.py); the window spans both."""
        merged = merge_fields(
            self, other, first_ts=least(self.first_ts, other.first_ts), last_ts=greatest(self.last_ts, other.last_ts)
        )
        merged.excluded = dict(sorted(merged.excluded.items()))
        return merged

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "first_ts": self.first_ts, "last_ts": self.last_ts, "excluded": self.excluded}


@dataclass
class DriftJob:
    """For an offline engine (shipway.engine): summarise batches of logged rows against a profile."""

    COLUMNS = ("ts", "service", "status", "inputs", "outputs")  # what it reads of the log

    profile: str  # the profile.json, or the artifacts folder that holds it
    since: float | None = None  # rows logged before are left out
    until: float | None = None  # and rows logged at or after
    service: str | None = None  # rows of other services are left out

    def setup(self) -> None:
        self._profile = Profile.load(Path(self.profile))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}  # workers load their own

    def __call__(self, rows: list[dict[str, Any]]) -> WindowSummary:
        since, until, service = self.since, self.until, self.service
        chosen = [
            r
            for r in rows
            if (since is None or r["ts"] >= since)
            and (until is None or r["ts"] < until)
            and (service is None or r.get("service", service) == service)
        ]
        excluded: dict[str, int] = {}
        ok = [r for r in chosen if r.get("status", 200) == 200]
        if len(ok) < len(chosen):
            excluded["status other than 200"] = len(chosen) - len(ok)
        inputs, outputs, times = [], [], []
        for r in ok:
            try:
                item, answer = _parsed(r["inputs"]), _parsed(r["outputs"])
            except orjson.JSONDecodeError:
                excluded["inputs or outputs not valid JSON"] = excluded.get("inputs or outputs not valid JSON", 0) + 1
                continue
            inputs.append(item)
            outputs.append(answer)
            times.append(r["ts"])
        window = Window.from_items(inputs, outputs, self._profile)
        parts = {f.name: part_of(f, window.columns.get(f.name, [None] * window.n_rows)) for f in self._profile.features}
        return WindowSummary(
            parts, window.n_rows, min(times, default=None), max(times, default=None), dict(sorted(excluded.items()))
        )


def merged(parts: Iterable[WindowSummary]) -> WindowSummary:
    """One summary from the summaries of a window's parts."""
    return reduce(WindowSummary.merge, parts)


def _parsed(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (bytes, str)) else value
