"""The guards of a rollout step judged on the comparison of the candidate with the live version.

Each guard judges only on enough data (`min_requests` candidate requests, `min_labelled`
labels of each version); until then it waits, and a step does not end while its candidate
has answered too few requests to be judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipway.deploy.plan import Guards
from shipway.store.version_comparison import Comparison

__all__ = ["Breach", "Verdict", "judge"]


@dataclass(frozen=True, slots=True)
class Breach:
    """A guard the candidate broke: its figure against the limit."""

    guard: str
    value: float
    limit: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"guard": self.guard, "value": self.value, "limit": self.limit, "message": self.message}


@dataclass(slots=True)
class Verdict:
    """What the guards said: breaches (roll back), and whether there was enough data to end a step."""

    breaches: list[Breach] = field(default_factory=list)
    enough: bool = False
    waiting: list[str] = field(default_factory=list)  # guards that lacked data, and why

    @property
    def breached(self) -> bool:
        return bool(self.breaches)

    def reason(self) -> str:
        return "; ".join(b.message for b in self.breaches)

    def to_dict(self) -> dict[str, Any]:
        return {"breaches": [b.to_dict() for b in self.breaches], "enough": self.enough, "waiting": self.waiting}


def judge(guards: Guards, comparison: Comparison, suite: dict[str, Any] | None = None) -> Verdict:
    """Judge `comparison` (the guards' window of the current step). `suite` is the validation
    report written during the step, when the suites guard is on and one was written."""
    verdict = Verdict()
    cand, live = comparison.candidate, comparison.live
    verdict.enough = cand.requests >= guards.min_requests
    if not verdict.enough:
        verdict.waiting.append(f"the candidate answered {cand.requests} of the {guards.min_requests} requests needed")
    else:
        _error_rate(guards, comparison, verdict)
        _latency(guards, comparison, verdict)
    if not comparison.records:
        return verdict  # rollups only: agreement, accuracy and the suites wait for a check that reads records
    if guards.min_agreement > 0:
        if comparison.paired < guards.min_requests:
            verdict.waiting.append(f"agreement: {comparison.paired} of {guards.min_requests} paired requests")
        elif (comparison.agreement or 0.0) < guards.min_agreement:
            top = comparison.disagreements[0] if comparison.disagreements else None
            most = f" (most often {top.live!r} -> {top.candidate!r}, {top.count} times)" if top else ""
            verdict.breaches.append(
                Breach(
                    "min_agreement",
                    comparison.agreement or 0.0,
                    guards.min_agreement,
                    f"agreement with the live version {comparison.agreement:.1%} is below {guards.min_agreement:.1%} "
                    f"over {comparison.paired} requests{most}",
                )
            )
    if guards.max_accuracy_drop < 1:
        if min(cand.labelled, live.labelled) < guards.min_labelled:
            verdict.waiting.append(
                f"accuracy: {cand.labelled} and {live.labelled} labelled of {guards.min_labelled} needed"
            )
        elif cand.accuracy is not None and live.accuracy is not None:
            drop = live.accuracy - cand.accuracy
            if drop > guards.max_accuracy_drop:
                verdict.breaches.append(
                    Breach(
                        "max_accuracy_drop",
                        drop,
                        guards.max_accuracy_drop,
                        f"online accuracy {cand.accuracy:.1%} is {drop:.1%} below the live version's "
                        f"{live.accuracy:.1%} (at most {guards.max_accuracy_drop:.1%} allowed; "
                        f"{cand.labelled} labels)",
                    )
                )
    if guards.suites and suite is not None and not suite.get("ok", True):
        counts = suite.get("counts") or {}
        failing = int(counts.get("failed", 0)) + int(counts.get("error", 0))
        verdict.breaches.append(
            Breach("suites", float(failing), 0.0, f"the validation suites failed during the step: {failing} cases")
        )
    return verdict


def _error_rate(guards: Guards, comparison: Comparison, verdict: Verdict) -> None:
    cand = comparison.candidate
    rate = cand.error_rate or 0.0
    if guards.max_error_rate < 1 and rate > guards.max_error_rate:
        verdict.breaches.append(
            Breach(
                "max_error_rate",
                rate,
                guards.max_error_rate,
                f"error rate {rate:.1%} ({cand.errors} of {cand.requests}) is above {guards.max_error_rate:.1%}",
            )
        )


def _latency(guards: Guards, comparison: Comparison, verdict: Verdict) -> None:
    p99, live_p99 = comparison.candidate.latency_p99_ms, comparison.live.latency_p99_ms
    if p99 is None:
        return
    if guards.max_p99_ms > 0 and p99 > guards.max_p99_ms:
        verdict.breaches.append(
            Breach("max_p99_ms", p99, guards.max_p99_ms, f"p99 latency {p99:.1f} ms is above {guards.max_p99_ms:g} ms")
        )
    if guards.max_p99_ratio > 0 and live_p99 and p99 > guards.max_p99_ratio * live_p99:
        verdict.breaches.append(
            Breach(
                "max_p99_ratio",
                p99 / live_p99,
                guards.max_p99_ratio,
                f"p99 latency {p99:.1f} ms is {p99 / live_p99:.2f} times the live version's {live_p99:.1f} ms "
                f"(at most {guards.max_p99_ratio:g} times)",
            )
        )
