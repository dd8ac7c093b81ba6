"""Cases: an input, the expectations on its output, and behavioural checks over variants.

An invariance case says rewordings of the input must keep its label (and, with a
tolerance, its probability); a direction case says a change must raise or lower
a score. Both compare the variants' outputs with the case input's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipway.expect.expectations import Check, Expectation
from shipway.expect.fields import MISSING, Fields, get_path, percent, rank_of, shorten
from shipway.expect.parsing import specs

__all__ = ["Case", "Direction", "Failed", "Invariance"]


@dataclass(frozen=True, slots=True)
class Failed:
    """Stands in for the output of an input the service failed on."""

    message: str


@dataclass(frozen=True, slots=True)
class Invariance:
    variants: list[Any]
    tolerance: float | None = None  # the most the probability may move; None: only the label counts

    def describe(self) -> str:
        moved = f", probability within {self.tolerance:g}" if self.tolerance is not None else ""
        return f"same label for {len(self.variants)} rewording(s){moved}"

    def evaluate(self, base: Any, variants: list[Any], fields: Fields) -> list[Check]:
        label = fields.label_of(base)
        if label is MISSING:
            return [Check(self.describe(), False, fields.missing("label", base))]
        p_base = fields.probability_of(base)
        problems = []
        for i, (item, output) in enumerate(zip(self.variants, variants, strict=True), start=1):
            other = fields.label_of(output)
            p = fields.probability_of(output)
            if other != label:
                problems.append(
                    f"variant {i} {shorten(item, 60)} is labelled {other!r}{percent(_p(p))}, "
                    f"not {label!r}{percent(_p(p_base))}"
                )
            elif self.tolerance is not None and p is not MISSING and p_base is not MISSING:
                if abs(p - p_base) > self.tolerance:
                    problems.append(
                        f"variant {i} {shorten(item, 60)} moved the probability of {label!r} by "
                        f"{p - p_base:+.2f} ({p_base:.2f} -> {p:.2f}), more than {self.tolerance:g}"
                    )
        if problems:
            return [Check(self.describe(), False, "; ".join(problems))]
        return [Check(self.describe(), True, f"all {len(self.variants)} labelled {label!r}")]


@dataclass(frozen=True, slots=True)
class Direction:
    variants: list[Any]
    raises: bool
    score: str = "probability"  # "probability" (of `label`) or a field path
    label: Any = None  # with score "probability": whose probability; default the case input's label
    by: float = 0.0  # the least change that counts

    def describe(self) -> str:
        what = self.score if self.score != "probability" or self.label is None else f"probability of {self.label}"
        return f"{len(self.variants)} change(s) {'raise' if self.raises else 'lower'} {what}"

    def value(self, output: Any, fields: Fields, label: Any) -> float | None:
        if self.score == "probability":
            try:
                position, p = rank_of(fields.ranking(output), label)
            except LookupError:
                return None
            # A label the output does not rank has, as far as the output says, no probability.
            return 0.0 if position is None else p
        v = get_path(output, self.score)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def evaluate(self, base: Any, variants: list[Any], fields: Fields) -> list[Check]:
        label = self.label if self.label is not None else fields.label_of(base)
        before = self.value(base, fields, label)
        if before is None:
            return [Check(self.describe(), False, f"the case input's output has no number at {self.score!r}")]
        problems = []
        for i, (item, output) in enumerate(zip(self.variants, variants, strict=True), start=1):
            after = self.value(output, fields, label)
            if after is None:
                problems.append(f"variant {i}'s output has no number at {self.score!r}")
                continue
            change = after - before
            ok = change >= self.by and change > 0 if self.raises else -change >= self.by and change < 0
            if not ok:
                what = f"the probability of {label!r}" if self.score == "probability" else self.score
                problems.append(
                    f"variant {i} {shorten(item, 60)} changed {what} from {before:.3f} to {after:.3f} ({change:+.3f})"
                )
        if problems:
            return [Check(self.describe(), False, "; ".join(problems))]
        return [Check(self.describe(), True, f"{len(self.variants)} change(s) moved it the expected way")]


def _p(value: Any) -> float | None:
    return None if value is MISSING else value


@dataclass
class Case:
    """One known input and what its output must be."""

    name: str
    input: Any
    expect: list[Expectation] = field(default_factory=list)
    behaviour: Invariance | Direction | None = None
    expect_failure: bool = False
    reason: str | None = None
    suite: str = ""
    file: str | None = None
    line: int | None = None

    @property
    def id(self) -> str:
        return f"{self.suite}::{self.name}"

    @property
    def inputs(self) -> list[Any]:
        """The case input, then the behavioural variants."""
        return [self.input, *(self.behaviour.variants if self.behaviour else ())]

    def evaluate(self, outputs: list[Any], fields: Fields) -> list[Check]:
        """Every check of the case on its outputs (one per input, in `inputs` order)."""
        failed = [(i, o) for i, o in enumerate(outputs) if isinstance(o, Failed)]
        if failed:
            i, o = failed[0]
            which = "the case input" if i == 0 else f"variant {i}"
            return [Check("a prediction", False, f"the service failed on {which}: {o.message}")]
        checks = [e.check(outputs[0], fields) for e in self.expect]
        if self.behaviour is not None:
            checks.extend(self.behaviour.evaluate(outputs[0], outputs[1:], fields))
        return checks

    def describe(self) -> str:
        parts = [e.describe() for e in self.expect]
        if self.behaviour is not None:
            parts.append(self.behaviour.describe())
        return "; ".join(parts)

    def spec(self) -> dict[str, Any]:
        """The single-input expectations as an `expect:` mapping (what /explain accepts)."""
        return specs(self.expect)
