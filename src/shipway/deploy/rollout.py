"""Rollouts: a candidate version taken through the plan's steps, judged by its guards, promoted
at the end or rolled back the moment a guard breaks (docs/deploy.md#rollouts).

The state is the registry's candidate state in the store, nothing else: the step a rollout is
at is written in the state's reason (`rollout step 2/4: canary 5% for 30m`) and the step began
when that state was written. So the controller (`Rollout.tick`) holds no state of its own: it
runs in every serving worker (and in `shipway rollout run`), survives restarts, and works with
any number of replicas, because each change is a compare-and-set on the state's generation
that one caller wins; only the winner notifies.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipway.deploy.guards import Verdict, judge
from shipway.deploy.plan import Plan
from shipway.deploy.rollout_messages import notify_decision
from shipway.errors import RegistryError, RolloutError
from shipway.notify import Delivery
from shipway.registry import (
    CandidateConflict,
    CandidateState,
    candidate_history,
    current_candidate,
    resolve,
    set_candidate,
    who,
)
from shipway.store.base import Store
from shipway.store.outcomes import OutputReader
from shipway.store.version_comparison import Comparison, compare_versions

__all__ = ["Decision", "Rollout", "RolloutStatus", "step_of"]

logger = logging.getLogger("shipway.deploy")
_STEP = re.compile(r"^rollout step (\d+)/(\d+)")

#: Runs the parity gate on a version before it takes any traffic; raises to refuse it.
ParityGate = Callable[[str], None]


def step_of(state: CandidateState | None) -> int | None:
    """The plan step (0-based) a state was written for, or None when no plan drives it."""
    if state is None or not state.active:
        return None
    found = _STEP.match(state.reason)
    return int(found.group(1)) - 1 if found else None


@dataclass(slots=True)
class Decision:
    """One change the controller or a command made: the new state, why, and who was told."""

    action: str  # started, advanced, promoted, rolled_back, aborted
    state: CandidateState
    reason: str
    verdict: Verdict | None = None
    comparison: Comparison | None = None
    deliveries: list[Delivery] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "state": self.state.to_dict(),
            "reason": self.reason,
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "deliveries": [d.to_dict() for d in self.deliveries],
        }


@dataclass(slots=True)
class RolloutStatus:
    """Where the service's rollout stands, with the guards' view of the current step."""

    service: str
    plan: Plan
    state: CandidateState | None
    step: int | None
    step_ends: float | None
    comparison: Comparison | None
    verdict: Verdict | None
    history: list[CandidateState]

    @property
    def running(self) -> bool:
        return self.state is not None and self.state.active

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "running": self.running,
            "state": None if self.state is None else self.state.to_dict(),
            "step": None if self.step is None else self.step + 1,
            "steps": [s.to_dict() for s in self.plan.steps],
            "step_ends": self.step_ends,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "history": [s.to_dict() for s in self.history],
        }


class Rollout:
    """The service's rollouts over `store`, following `plan`.

    `reader` reads labels from logged outputs (the monitoring settings); `suite_report` is the
    validation report the suites guard reads; `clock` is the time source.
    """

    def __init__(
        self,
        store: Store,
        service: str,
        plan: Plan,
        *,
        reader: OutputReader | None = None,
        suite_report: Path | None = None,
        actor: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.service, self.plan = store, service, plan
        self.reader = reader or OutputReader()
        self.suite_report = suite_report
        self.actor = actor
        self.clock = clock
        self._deep_at: dict[int, float] = {}  # generation -> when its records were last read

    # -- the commands ---------------------------------------------------------

    def start(self, version: str, *, key: str | None = None, parity: ParityGate | None = None) -> Decision:
        """Put `version` (a version, prefix or alias) at the plan's first step. The parity gate,
        when given, runs before any traffic reaches the candidate."""
        current = current_candidate(self.store, self.service)
        if current is not None and current.active:
            raise RolloutError(
                f"{current.version} is already rolling out on {self.service!r} ({current.mode}, {current.reason}); "
                "let it finish, or stop it with `shipway rollout abort` before starting another."
            )
        resolved = resolve(self.store, version).version
        run_parity_gate(parity, resolved)
        first = self.plan.steps[0]
        state = CandidateState(resolved, first.mode, first.share, key, self._reason(0), self._actor())  # type: ignore[arg-type]
        written = self._write(state, current)
        return self._decided("started", written, written.reason)

    def promote(self, reason: str = "") -> Decision:
        """Promote the running candidate now, whatever step it is at."""
        current = self._running("promote")
        text = f"promoted by {self._actor()}" + (f": {reason}" if reason else "")
        state = CandidateState(current.version, "promoted", 0.0, current.key, text, self._actor())
        return self._decided("promoted", self._write(state, current), text)

    def abort(self, reason: str = "") -> Decision:
        """Stop the running candidate now: it takes no more traffic. It can be started again."""
        current = self._running("abort")
        text = f"aborted by {self._actor()}" + (f": {reason}" if reason else "")
        state = CandidateState(current.version, "rolled_back", 0.0, current.key, text, self._actor())
        return self._decided("aborted", self._write(state, current), text)

    def status(self, history: int = 20) -> RolloutStatus:
        state = current_candidate(self.store, self.service)
        step = step_of(state)
        comparison = verdict = None
        step_ends = None
        if state is not None and state.active:
            comparison, verdict = self._judge(state, self.clock())
            if step is not None and step < len(self.plan.steps):
                step_ends = state.changed_at + self.plan.steps[step].duration_s
        return RolloutStatus(
            self.service,
            self.plan,
            state,
            step,
            step_ends,
            comparison,
            verdict,
            candidate_history(self.store, self.service, history),
        )

    # -- the controller -------------------------------------------------------

    def tick(self) -> Decision | None:
        """One check of the running rollout: roll back on a breached guard, else move to the next
        step when this one has lasted its duration on enough data. None when nothing changed
        (no rollout driven by the plan, nothing due, or another worker made the change)."""
        state = current_candidate(self.store, self.service)
        step = step_of(state)
        if state is None or step is None:
            return None
        now = self.clock()
        # The rollups first: a few hundred rows, so an error or latency breach is seen on every check.
        comparison, verdict = self._judge(state, now, records=False)
        step_due = step < len(self.plan.steps) - 1 and now - state.changed_at >= self.plan.steps[step].duration_s
        deep_due = now - self._deep_at.get(state.generation, float("-inf")) >= self.plan.deep_check_every_s
        # A step that is due ends on a record-reading check, once the rollups show enough requests.
        if not verdict.breached and ((step_due and verdict.enough) or deep_due):
            comparison, verdict = self._judge(state, now)
            self._deep_at = {state.generation: now}
        if verdict.breached:
            text = f"guard breached at {self._where(step)}: {verdict.reason()}"
            new = CandidateState(state.version, "rolled_back", 0.0, state.key, text, self._actor())
            action = "rolled_back"
        elif step_due and comparison.records and verdict.enough:
            nxt = self.plan.steps[step + 1]
            if nxt.mode == "promote":
                text = f"promoted after {self._where(step)} passed its guards"
                new = CandidateState(state.version, "promoted", 0.0, state.key, text, self._actor())
                action = "promoted"
            else:
                text = self._reason(step + 1)
                new = CandidateState(state.version, nxt.mode, nxt.share, state.key, text, self._actor())  # type: ignore[arg-type]
                action = "advanced"
        else:
            return None
        try:
            written = self._write(new, state)
        except CandidateConflict:
            return None  # another worker or replica decided first; it notifies
        except RegistryError:
            # set_candidate checks the state it ends before its compare-and-set: a change another
            # worker made meanwhile shows here; anything else is a real error.
            moved = current_candidate(self.store, self.service)
            if moved is not None and moved.generation != state.generation:
                return None
            raise
        if action == "rolled_back":
            logger.warning("rollout of %s rolled back: %s", state.version, text)
        return self._decided(action, written, text, verdict, comparison)

    # -- helpers --------------------------------------------------------------

    def _judge(self, state: CandidateState, now: float, *, records: bool = True) -> tuple[Comparison, Verdict]:
        since = max(state.changed_at, now - self.plan.guards.window_s)
        if since == state.changed_at and since % 60:
            # The rollups are per minute: when an earlier rollout ended (rolled back, say) in the
            # minute this one started, that minute holds the earlier rollout's answers too.
            before = candidate_history(self.store, self.service, 2)[1:]
            if before and not before[0].active and before[0].changed_at // 60 == since // 60:
                since = (since // 60 + 1) * 60
        comparison = compare_versions(
            self.store, self.service, state.version, since=since, until=now + 1, reader=self.reader, records=records
        )
        return comparison, judge(self.plan.guards, comparison, self._suite(state))

    def _suite(self, state: CandidateState) -> dict[str, Any] | None:
        """The validation report written during the current step, when the suites guard reads one."""
        if not self.plan.guards.suites or self.suite_report is None:
            return None
        try:
            report = json.loads(self.suite_report.read_text())
        except (OSError, ValueError):
            return None
        started = report.get("started_at") if isinstance(report, dict) else None
        return report if isinstance(started, int | float) and started >= state.changed_at else None

    def _running(self, command: str) -> CandidateState:
        current = current_candidate(self.store, self.service)
        if current is None or not current.active:
            last = "" if current is None else f" (the last one, {current.version}, is {current.mode})"
            raise RolloutError(
                f"no rollout is running on {self.service!r} to {command}{last}; start one with `shipway rollout start VERSION`."
            )
        return current

    def _write(self, state: CandidateState, current: CandidateState | None) -> CandidateState:
        return set_candidate(
            self.store, self.service, state, expected_generation=0 if current is None else current.generation
        )

    def _decided(
        self,
        action: str,
        state: CandidateState,
        reason: str,
        verdict: Verdict | None = None,
        comparison: Comparison | None = None,
    ) -> Decision:
        decision = Decision(action, state, reason, verdict, comparison)
        figures: dict[str, Any] = {}
        if comparison is not None:
            cand = comparison.candidate
            figures = {
                "requests": cand.requests,
                "error_rate": cand.error_rate,
                "latency_p99_ms": cand.latency_p99_ms,
                "agreement": comparison.agreement,
                "accuracy": cand.accuracy,
                "live_version": comparison.live.version,
                "live_accuracy": comparison.live.accuracy,
            }
        step = step_of(state)
        event = {
            "action": action,
            "service": self.service,
            "version": state.version,
            "mode": state.mode,
            "share": state.share,
            "step": None if step is None else self._where(step),
            "reason": reason,
            "actor": state.actor,
            "ts": state.changed_at,
            "generation": state.generation,
            "breaches": [] if verdict is None else [b.to_dict() for b in verdict.breaches],
            "figures": figures,
        }
        decision.deliveries = notify_decision(event, slack=self.plan.slack, webhook=self.plan.webhook)
        for delivery in decision.deliveries:
            if not delivery.ok:
                logger.warning("rollout message to %s failed: %s", delivery.url, delivery.error)
        return decision

    def _reason(self, step: int) -> str:
        return f"{self._where(step)}: {self.plan.steps[step].describe()}"

    def _where(self, step: int) -> str:
        return f"rollout step {step + 1}/{len(self.plan.steps)}"

    def _actor(self) -> str:
        return self.actor or who()


def run_parity_gate(parity: ParityGate | None, version: str) -> None:
    """THE PARITY GATE'S CALL SITE: before a candidate takes any traffic, its answers must match
    what its training run recorded (deploy/parity.py, when the project has one). Raises to refuse."""
    if parity is not None:
        parity(version)


def controller_actor() -> str:
    """Who the controller's changes are recorded against: this process, on this host."""
    return f"rollout controller ({socket.gethostname()}:{os.getpid()})"
