"""What the dashboard and the report show of one service over one time window, as JSON-ready dicts.

The dashboard's API endpoints and the HTML report read the same functions, so a number
on the page, in the report and in `/dashboard/api/...` is the same number.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipway.common import times
from shipway.errors import ConfigError, ShipwayError
from shipway.store import Store
from shipway.store.feedback import Describe

__all__ = [
    "BY",
    "ORDERS",
    "Sources",
    "Window",
    "alerts_json",
    "auto_step",
    "drift_json",
    "metrics_json",
    "parse_time",
    "predictions_json",
    "snapshot",
    "validation_json",
    "versions_json",
]

BY = ("model_version", "rules_version")
ORDERS = ("slowest", "uncertain")
# Bucket sizes the series snap to: round numbers on a time axis, about 30 to 120 buckets a window.
_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
_TARGET_BUCKETS = 60


@dataclass
class Sources:
    """Where the monitoring pages read from: the store, and what the CLI layer hands in.

    `describe` reads a logged output's label and confidence (the service's, from the CLI
    layer; without it, feedback is not re-joined and no prediction has a confidence);
    `profile` is the drift reference (artifacts/profile.json) when the project has one;
    `validation` the JSON report `shipway validate --json FILE` wrote; `drift_options` are
    passed to the drift comparison as they are.
    """

    store: Store
    service: str
    describe: Describe | None = None
    profile: Path | None = None
    validation: Path | None = None
    drift_options: dict[str, Any] = field(default_factory=dict)
    export: Path | None = None  # the log's Parquet export, read where it covers a window


@dataclass(frozen=True)
class Window:
    since: float
    until: float
    step_s: int

    @classmethod
    def parse(
        cls, since: str | None, until: str | None = None, step: str | None = None, now: float | None = None
    ) -> Window:
        """A window from CLI or query-string text: `--since 7d`, `--until 2024-05-01`, `step=1h`."""
        now = time.time() if now is None else now
        end = parse_time(until, now, "until") if until else now
        start = parse_time(since or "24h", now, "since")
        if start >= end:
            raise ConfigError(
                f"the window starts ({_iso(start)}) at or after it ends ({_iso(end)}); "
                "give a --since earlier than --until, e.g. --since 7d"
            )
        if not step:
            return cls(start, end, auto_step(end - start))
        step_s = _duration(step, "step")
        if (end - start) / step_s > 10_000:
            raise ConfigError(f"step={step!r} cuts this window into over 10,000 buckets; use a larger step, e.g. 1h")
        if step_s % 60 or step_s > _STEPS[-1]:
            raise ConfigError(
                f"step={step!r} is not a whole number of minutes up to 7d: the series add up minute "
                "rollups; use 1m, 5m, 1h or 1d, say"
            )
        return cls(start, end, int(step_s))

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "step_s": self.step_s}


def parse_time(text: str, now: float, what: str) -> float:
    """`shipway.common.times.parse_time`, its errors as ConfigError (a 400 on the dashboard)."""
    try:
        return times.parse_time(text, now, what)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _duration(text: str, what: str) -> float:
    try:
        return times.parse_duration(text, what)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def auto_step(span_s: float) -> int:
    """The round bucket size that cuts `span_s` into about 60 buckets."""
    for step in _STEPS:
        if span_s / step <= _TARGET_BUCKETS * 2:
            return step
    return _STEPS[-1]


def metrics_json(sources: Sources, window: Window, by: str | None = "model_version") -> dict[str, Any]:
    """The online metrics (`OnlineMetrics.to_dict()`) of the window, split `by` a version."""
    from shipway.monitoring.metrics.online import online_metrics

    if by is not None and by not in BY:
        raise ConfigError(f"by={by!r} is not a way to split the metrics; use one of {', '.join(BY)}, or none")
    result = online_metrics(
        sources.store,
        sources.service,
        since=window.since,
        until=window.until,
        step_s=window.step_s,
        by=by,
        describe=sources.describe,
    )
    return dict(result.to_dict())


def versions_json(sources: Sources, window: Window) -> list[dict[str, Any]]:
    """The model and rules version pairs that answered in the window, with their sample sizes."""
    from shipway.store.series import version_pairs

    return version_pairs(sources.store, sources.service, window.since, window.until, window.step_s)


def predictions_json(sources: Sources, window: Window, order: str = "slowest", limit: int = 10) -> list[dict[str, Any]]:
    """The slowest, or least confident, predictions of the window, newest data decoded."""
    from shipway.monitoring.metrics.online import recent_predictions

    if order not in ORDERS:
        raise ConfigError(f"order={order!r} is not a way to rank predictions; use one of {', '.join(ORDERS)}")
    if not 1 <= limit <= 1000:
        raise ConfigError(f"limit={limit!r} must be between 1 and 1000")
    describe = sources.describe or _undescribed
    rows = recent_predictions(
        sources.store,
        sources.service,
        since=window.since,
        limit=limit,
        order=order,
        describe=describe,
        export=sources.export,
    )
    return [r for r in rows if r["ts"] < window.until]


def alerts_json(sources: Sources, window: Window, limit: int = 50) -> list[dict[str, Any]]:
    """Alert state changes in the window, newest first."""
    events = sources.store.alert_events(sources.service, since=window.since, limit=limit)
    return [
        {"id": e.id, "key": e.key, "firing": bool(e.firing), "ts": e.ts, "detail": dict(e.detail)}
        for e in events
        if e.ts < window.until
    ]


def drift_json(sources: Sources, window: Window) -> dict[str, Any]:
    """{"status": "ok" | "no_profile" | "error", "message", "report"}: drift of the window's
    traffic against the reference profile, or why there is none."""
    if sources.profile is None or not sources.profile.is_file():
        where = f" at {sources.profile}" if sources.profile is not None else ""
        return {
            "status": "no_profile",
            "message": f"no reference profile{where}: training writes artifacts/profile.json (see docs/drift.md)",
            "report": None,
        }
    from shipway.monitoring.drift.comparison import compare
    from shipway.monitoring.drift.profile import Profile
    from shipway.monitoring.drift.window import window_from_store

    try:
        profile = Profile.load(sources.profile)
        current = window_from_store(
            sources.store,
            service=sources.service,
            since=window.since,
            until=window.until,
            profile=profile,
            export=sources.export,
        )
        report = compare(profile, current, **sources.drift_options)
    except ShipwayError as err:
        return {"status": "error", "message": str(err), "report": None}
    return {"status": "ok", "message": "", "report": report.to_dict()}


def validation_json(sources: Sources) -> dict[str, Any]:
    """{"status": "ok" | "none" | "error", "message", "path", "report"}: the newest validation run
    that `shipway validate --json FILE` wrote."""
    path = sources.validation
    if path is None or not path.is_file():
        hint = f"shipway validate --json {path}" if path is not None else "shipway validate --json FILE"
        return {"status": "none", "message": f"no validation report yet; write one with `{hint}`", "path": str(path)}
    try:
        report = json.loads(path.read_bytes())
        if not isinstance(report, dict) or not isinstance(report.get("results"), list):
            raise ValueError("it has no 'results' list")
    except (OSError, ValueError) as err:
        message = f"{path} is not a validation report ({err}); rewrite it with `shipway validate --json {path}`"
        return {"status": "error", "message": message, "path": str(path)}
    return {"status": "ok", "message": "", "path": str(path), "report": report, "mtime": path.stat().st_mtime}


def snapshot(
    sources: Sources, window: Window, *, by: str | None = "model_version", limit: int = 10, scans: bool = True
) -> dict[str, Any]:
    """Everything the page shows, in one dict. The panels that read every logged prediction of
    the window ("drift", "slowest", "uncertain") are left to the caller with `scans=False`."""
    snap = {
        "service": sources.service,
        "window": window.to_dict(),
        "generated": time.time(),
        "metrics": metrics_json(sources, window, by),
        "versions": versions_json(sources, window),
        "alerts": alerts_json(sources, window),
        "firing": sorted(k for k, firing in sources.store.alert_states(sources.service).items() if firing),
        "validation": validation_json(sources),
    }
    if scans:
        snap["drift"] = drift_json(sources, window)
        snap["slowest"] = predictions_json(sources, window, "slowest", limit)
        snap["uncertain"] = predictions_json(sources, window, "uncertain", limit)
    return snap


def _undescribed(outputs: bytes, name: str, actual: Any) -> tuple[str | None, float | None, int | None]:
    return None, None, None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
