"""The rollout plan of shipway.toml: steps from shadow through canary shares to promotion, and
the guards that stop a bad candidate (docs/deploy.md#rollouts).

    [rollout]
    steps = [
      {mode = "shadow", duration = "30m"},
      {mode = "canary", share = 0.05, duration = "30m"},
      {mode = "promote"},
    ]
    max_error_rate = 0.02
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipway.common.times import parse_duration
from shipway.errors import ConfigError

__all__ = ["MODES", "Guards", "Plan", "Step", "load_plan"]

MODES = ("shadow", "canary", "promote")
_KEYS = {"shadow": {"mode", "share", "duration"}, "canary": {"mode", "share", "duration"}, "promote": {"mode"}}
logger = logging.getLogger("shipway.deploy")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_EXAMPLE = '{mode = "canary", share = 0.05, duration = "30m"}'


@dataclass(frozen=True, slots=True)
class Step:
    """One step: the candidate's mode, its share of traffic, and how long the step lasts."""

    mode: str  # "shadow", "canary" or "promote"
    share: float = 1.0
    duration_s: float = 0.0

    def describe(self) -> str:
        if self.mode == "promote":
            return "promote"
        return f"{self.mode} {self.share:.0%} for {_human(self.duration_s)}"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "share": self.share, "duration_s": self.duration_s}


@dataclass(frozen=True, slots=True)
class Guards:
    """Limits on the candidate's figures; a limit at its off value is not checked."""

    max_error_rate: float = 0.02
    max_p99_ms: float = 0.0
    max_p99_ratio: float = 2.0
    min_agreement: float = 0.0
    max_accuracy_drop: float = 0.02
    suites: bool = False
    min_requests: int = 100
    min_labelled: int = 50
    window_s: float = 900.0

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...]
    guards: Guards
    check_every_s: float = 2.0
    deep_check_every_s: float = 60.0
    slack: str = ""
    webhook: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "guards": self.guards.to_dict(),
            "check_every_s": self.check_every_s,
            "deep_check_every_s": self.deep_check_every_s,
        }


def load_plan(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Plan:
    """The plan the `rollout.*` settings describe; ConfigError naming every bad step."""
    steps = parse_steps(settings["rollout.steps"])
    guards = Guards(
        max_error_rate=settings["rollout.max_error_rate"],
        max_p99_ms=settings["rollout.max_p99_ms"],
        max_p99_ratio=settings["rollout.max_p99_ratio"],
        min_agreement=settings["rollout.min_agreement"],
        max_accuracy_drop=settings["rollout.max_accuracy_drop"],
        suites=settings["rollout.suites"],
        min_requests=settings["rollout.min_requests"],
        min_labelled=settings["rollout.min_labelled"],
        window_s=settings["rollout.window_s"],
    )
    env = os.environ if environ is None else environ
    return Plan(
        steps,
        guards,
        settings["rollout.check_every_s"],
        settings["rollout.deep_check_every_s"],
        _expand(settings["rollout.slack"], "rollout.slack", env),
        _expand(settings["rollout.webhook"], "rollout.webhook", env),
    )


def parse_steps(raw: Any) -> tuple[Step, ...]:
    """The steps of `rollout.steps`: shadow and canary steps, then one promote step, last."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            f"setting 'rollout.steps' must be a list of steps like [{_EXAMPLE}, {{mode = \"promote\"}}], got {raw!r}"
        )
    problems: list[str] = []
    steps: list[Step] = []
    for i, item in enumerate(raw):
        try:
            steps.append(_step(item))
        except ValueError as err:
            problems.append(f"step {i + 1}: {err}")
    if not problems:
        promotes = [i for i, s in enumerate(steps) if s.mode == "promote"]
        if promotes != [len(steps) - 1]:
            problems.append('the last step, and only it, must be {mode = "promote"}: the rollout ends in promotion')
        elif len(steps) < 2:
            problems.append("put a shadow or canary step before promote: a candidate is judged before it serves all")
    if problems:
        raise ConfigError(
            f"setting 'rollout.steps' has {len(problems)} problem{'s' * (len(problems) > 1)}: "
            + "; ".join(problems)
            + " (the plan's format is in docs/deploy.md#rollouts)"
        )
    return tuple(steps)


def _step(item: Any) -> Step:
    if not isinstance(item, Mapping):
        raise ValueError(f"expected a table like {_EXAMPLE}, got {item!r}")
    mode = item.get("mode")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    unknown = sorted(set(item) - _KEYS[mode])
    if unknown:
        raise ValueError(f"a {mode} step takes {', '.join(sorted(_KEYS[mode]))}; remove {', '.join(unknown)}")
    if mode == "promote":
        return Step("promote", 1.0, 0.0)
    if mode == "canary" and "share" not in item:
        raise ValueError(f"a canary step needs the share of requests the candidate answers, like {_EXAMPLE}")
    share = item.get("share", 1.0)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise ValueError(f"share {share!r} must be a number above 0 and at most 1 (0.05 is 5% of requests)")
    if "duration" not in item:
        raise ValueError(f'a {mode} step needs a duration, like duration = "30m"')
    duration = item["duration"]
    seconds = float(duration) if isinstance(duration, int | float) and not isinstance(duration, bool) else None
    if seconds is None:
        seconds = parse_duration(str(duration), "duration")
    elif seconds <= 0:
        raise ValueError(f'duration {duration!r} must be longer than zero, e.g. "30m"')
    return Step(mode, float(share), seconds)


def _expand(url: str, key: str, environ: Mapping[str, str]) -> str:
    """`url` with `${NAME}` read from the environment; a name not set leaves the channel off."""
    missing = [m.group(1) for m in _ENV.finditer(url) if m.group(1) not in environ]
    if missing:
        logger.warning("%s uses ${%s}, which is not set in the environment: no message goes there", key, missing[0])
        return ""
    return _ENV.sub(lambda m: environ[m.group(1)], url)


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
