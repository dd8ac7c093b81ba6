"""The parity check: a pipeline answers the held-out examples as its training run recorded.

`check_parity` runs a candidate's pipeline (loaded from its artifacts folder) over the examples
of its `held_out.jsonl` (core/held_out.py) and compares each answer with the recorded one: labels
(text, integers, booleans) exactly, scores (other numbers) within a tolerance. A mismatch is what
preprocessing skew (the service's stages changed since training) and library drift (another
scikit-learn, numpy, torch in the serving environment) look like; the project's gate policy
(`shipway.project.enforce`) refuses a mismatch with the first differing examples and the trace
of each through the pipeline.

It lives below the capabilities: `shipway deploy`, `shipway rollout start` (shipway.deploy) and
a model swap through `POST /admin/model` (serving) all run this one check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import orjson

from shipway.core.held_out import HELD_OUT, HeldOutExample, read_held_out, run_held_out
from shipway.core.pipeline import Pipeline
from shipway.errors import ArtifactError

__all__ = ["SHOWN", "Difference", "ParityReport", "check_parity", "first_difference"]

SHOWN = 3  # differing examples shown (and traced) in a report


@dataclass(slots=True)
class Difference:
    """The first place where the candidate's answer to one example differs from the recorded one."""

    id: int
    input: Any
    where: str  # a path in the answer, like `alternatives[1].probability`; "" for the whole answer
    expected: Any
    got: Any
    trace: dict[str, Any] | None = None


@dataclass(slots=True)
class ParityReport:
    """What the gate ran and found. `seconds` is the run and the comparison, beyond loading."""

    version: str | None
    folder: str
    split: str
    examples: int
    differing: int
    tolerance: float
    seconds: float
    differences: list[Difference] = field(default_factory=list)  # the first SHOWN

    @property
    def ok(self) -> bool:
        return self.differing == 0

    def summary(self) -> str:
        if self.ok:
            return (
                f"model {self.version} answers all {self.examples:,} held-out examples ({self.split} split) as its "
                f"training run recorded (scores within {self.tolerance:g}) in {self.seconds:.2f} s"
            )
        return (
            f"model {self.version} answers {self.differing:,} of {self.examples:,} held-out examples "
            f"({self.split} split) unlike its training run recorded (scores within {self.tolerance:g}): "
            "the pipeline or the environment serving it is not the one it was trained with (a changed stage "
            "in service.py, another library version). Fix the skew, or train the model again in this "
            "environment"
        )

    def render(self) -> str:
        """The summary, then each differing example shown: where it differs, and its trace."""
        lines = [self.summary()]
        for d in self.differences:
            where = d.where or "the answer"
            lines += [
                "",
                f"example {d.id}: {_short(d.input)}",
                f"  at {where}: recorded {_short(d.expected)}, now {_short(d.got)}",
            ]
            for stage in (d.trace or {}).get("stages", []):
                shown = f"error {stage['error']}" if stage.get("error") else _short(stage.get("output"))
                lines.append(f"  {stage['stage']:>12} ({stage['kind']}, {stage['ms']:.3f} ms) -> {shown}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "version": self.version,
            "folder": self.folder,
            "split": self.split,
            "examples": self.examples,
            "differing": self.differing,
            "tolerance": self.tolerance,
            "seconds": round(self.seconds, 4),
            "differences": [
                {"id": d.id, "input": d.input, "where": d.where, "expected": d.expected, "got": d.got, "trace": d.trace}
                for d in self.differences
            ],
        }


def check_parity(pipeline: Pipeline, artifacts: Path, tolerance: float) -> ParityReport:
    """Run `pipeline` (loaded from `artifacts`) over the held-out examples recorded there and
    compare. ArtifactError when the folder holds no recorded predictions."""
    artifacts = Path(artifacts)
    held = read_held_out(artifacts)
    if held is None:
        raise ArtifactError(
            f"{artifacts} holds no {HELD_OUT}: its training run recorded no answers to held-out examples, so "
            "nothing says how this model answered when it was trained. Train it with `shipway train` (it "
            "records them when the dataset has a test or validation split), or deploy with --no-parity."
        )
    started = perf_counter()
    answers = run_held_out(pipeline, [(e.id, e.input) for e in held.examples])
    differing = 0
    shown: list[Difference] = []
    for expected, got in zip(held.examples, answers, strict=True):
        difference = _compare(expected, got, tolerance)
        if difference is not None:
            differing += 1
            if len(shown) < SHOWN:
                shown.append(difference)
    seconds = perf_counter() - started
    for difference in shown:
        difference.trace = pipeline.trace(difference.input).to_dict()
    return ParityReport(
        version=pipeline.ids.get("model_version"),
        folder=str(artifacts),
        split=held.split,
        examples=len(held.examples),
        differing=differing,
        tolerance=tolerance,
        seconds=seconds,
        differences=shown,
    )


def first_difference(expected: Any, got: Any, tolerance: float, where: str = "") -> tuple[str, Any, Any] | None:
    """(where, expected, got) of the first difference between two JSON values, None if they match:
    text, integers, booleans and null exactly, other numbers within `tolerance`."""
    if (isinstance(expected, float) or isinstance(got, float)) and _number(expected) and _number(got):
        same = (math.isnan(expected) and math.isnan(got)) or abs(expected - got) <= tolerance
        return None if same else (where, expected, got)
    if isinstance(expected, dict) and isinstance(got, dict):
        if list(expected) != list(got):
            return (where, sorted(expected), sorted(got))
        for key, value in expected.items():
            found = first_difference(value, got[key], tolerance, f"{where}.{key}" if where else str(key))
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return (f"{where} (length)", len(expected), len(got))
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            found = first_difference(a, b, tolerance, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    same = type(expected) is type(got) and expected == got
    return None if same else (where, expected, got)


def _compare(expected: HeldOutExample, got: HeldOutExample, tolerance: float) -> Difference | None:
    if expected.error is not None or got.error is not None:
        if expected.error == got.error:
            return None
        return Difference(expected.id, expected.input, "", _outcome(expected), _outcome(got))
    found = first_difference(expected.output, got.output, tolerance)
    return None if found is None else Difference(expected.id, expected.input, *found)


def _outcome(example: HeldOutExample) -> Any:
    return {"error": example.error} if example.error is not None else example.output


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _short(value: Any, limit: int = 160) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."
