"""How a rules version's decisions score against the outcomes that came back (feedback).

One `DecisionScore` per rules version, over the decided predictions whose outcome is known:
the `label` outcome (the true label) scores the answer the rules returned, read as the
monitoring settings read outputs (`OutputReader`: a label, a binary score at its threshold,
a ranking's first item); a `queue` outcome (the queue that was right) scores the queue.
Answers that fell back to `default.answer` are counted apart: the answer is not the model's.

The backtest (experiments/backtest.py) and the shadow-against-live comparison
(rules/comparison.py) score both sides with it, so their figures mean the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipway.common.merging import merge_fields
from shipway.store.outcomes import OutputReader

__all__ = ["DecisionScore", "queue_totals"]


@dataclass(slots=True)
class DecisionScore:
    """Counts over decided predictions with a known outcome (see the module docstring)."""

    labelled: int = 0  # predictions whose true label came back
    correct: int = 0  # ... whose answer (the model's output with the rules' `set`) names it
    fell_back: int = 0  # ... answered with default.answer: neither right nor wrong
    reviewed: int = 0  # ... sent for review
    caught: int = 0  # wrong model answers sent for review or replaced by the default answer
    through: int = 0  # wrong answers returned without review
    queued: int = 0  # predictions whose right queue came back (a `queue` outcome)
    queue_correct: int = 0

    def add(
        self,
        reader: OutputReader,
        output: Any,
        queue: Any,
        review: bool,
        fallback: bool,
        overrides: Mapping[str, Any] | None,
        outcomes: Mapping[str, Any],
    ) -> None:
        """Score one decision on `output` (the model's, before the rules) against its outcomes."""
        if "queue" in outcomes:
            self.queued += 1
            self.queue_correct += queue is not None and str(queue) == str(outcomes["queue"])
        if "label" not in outcomes:
            return
        truth = outcomes["label"]
        self.labelled += 1
        self.reviewed += bool(review)
        if fallback:
            self.fell_back += 1
            self.caught += not _right(reader, output, truth)
            return
        answer = {**output, **overrides} if overrides and isinstance(output, Mapping) else output
        if _right(reader, answer, truth):
            self.correct += 1
        elif review:
            self.caught += 1
        else:
            self.through += 1

    def merge(self, other: DecisionScore) -> DecisionScore:
        return merge_fields(self, other)

    @property
    def accuracy(self) -> float | None:
        """Of the answers the model gave (not the default answer), the share that was right."""
        answered = self.labelled - self.fell_back
        return self.correct / answered if answered else None

    def to_dict(self) -> dict[str, Any]:
        wrong = self.caught + self.through
        return {
            "labelled": self.labelled,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "fell_back": self.fell_back,
            "reviewed": self.reviewed,
            "caught": self.caught,
            "through": self.through,
            "caught_share": self.caught / wrong if wrong else None,
            "queue": {
                "labelled": self.queued,
                "correct": self.queue_correct,
                "accuracy": self.queue_correct / self.queued if self.queued else None,
            },
        }


def _right(reader: OutputReader, output: Any, truth: Any) -> bool:
    """Whether `output` predicts `truth`, as the online metrics judge it."""
    return reader.read(output, "label", truth)[2] == 1


def queue_totals(queues: Mapping[tuple[Any, Any], int], side: int) -> dict[str, int]:
    """Decisions per queue on one side (0 or 1) of `(queue, queue)` pair counts, most first."""
    totals: Counter[str] = Counter()
    for pair, n in queues.items():
        totals[str(pair[side])] += n
    return dict(totals.most_common())
