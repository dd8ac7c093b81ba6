"""Expectations: what one output must satisfy, and what it showed when it did not.

Each expectation is written under a case's `expect:` (see docs/validation.md):

    label: card_arrival                            # the label equals
    label_in_top_k: {label: card_arrival, k: 3}    # the label or one of the first k-1 alternatives
    probability_at_least: 0.5                      # or {label: card_arrival, value: 0.2}
    item_in_top_k: {item: doc-42, k: 5}            # in the ranked list; `list:`/`key:` name it
    item_absent: {item: doc-13}                    # not in the ranked list (with `k:`, not in its top k)
    queue: card-team                               # the output's decision.queue equals
    field: {path: decision.review, equals: true}   # or `matches: <regex>`; or a list of them
    score: {below: 0.3}                            # the output's score (or probability) in a range:
                                                   # at_least, at_most, above, below (one or two)
    field: {path: amount, at_least: 0, at_most: 50}   # any numeric field in a range
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from shipway.expect.fields import MISSING, Fields, get_path, keys_of, percent, rank_of, shorten

__all__ = [
    "Check",
    "Expectation",
    "FieldEquals",
    "FieldMatches",
    "InRange",
    "ItemAbsent",
    "ItemInTopK",
    "LabelEquals",
    "LabelInTopK",
    "ProbabilityAtLeast",
    "QueueEquals",
    "first_failing",
]


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation applied to one output: `message` says what was seen."""

    expectation: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"expectation": self.expectation, "passed": self.passed, "message": self.message}


class Expectation:
    """A condition on one output. Subclasses set `key` (the YAML key) and implement `check`."""

    key: ClassVar[str]

    def subject(self) -> Any:
        """The label or item whose rank in the model's output explains a failure, if any."""
        return None

    def check(self, output: Any, fields: Fields) -> Check:
        raise NotImplementedError

    def observe(self, output: Any, fields: Fields) -> Any:
        """The value this expectation looks at, to find the stage that changed it."""
        return self.check(output, fields).message

    def watching(self, fields: Fields) -> str:
        """What `observe` returns, in words: 'the label', 'the rank of X'..."""
        return "the result"

    def describe(self) -> str:
        raise NotImplementedError

    def spec(self) -> Any:
        """The value under `key` that parses back to this expectation."""
        raise NotImplementedError

    def _result(self, passed: bool, message: str) -> Check:
        return Check(self.describe(), passed, message)


def label_seen(output: Any, fields: Fields) -> str:
    label = fields.label_of(output)
    p = fields.probability_of(output)
    if label is MISSING and p is not MISSING:  # a score service: no label, a number
        return f"{fields.path('probability', output)} is {p:g}"
    return f"label is {label!r}{percent(None if p is MISSING else p)}"


def ranked_at(output: Any, fields: Fields, item: Any) -> str:
    """Where `item` is in the output's ranking: 'ranked 3 of 4 (0.08)' or 'not among the 4 ranked'."""
    try:
        ranking = fields.ranking(output)
    except LookupError as err:
        return str(err)
    position, p = rank_of(ranking, item)
    if position is None:
        return f"{item!r} is not among the {len(ranking)} ranked"
    return f"{item!r} is ranked {position} of {len(ranking)}{percent(p)}"


@dataclass(frozen=True)
class LabelEquals(Expectation):
    label: Any
    key: ClassVar[str] = "label"

    def subject(self) -> Any:
        return self.label

    def check(self, output: Any, fields: Fields) -> Check:
        label = fields.label_of(output)
        if label is MISSING:
            return self._result(False, fields.missing("label", output))
        if label == self.label:
            return self._result(True, label_seen(output, fields))
        return self._result(False, f"{label_seen(output, fields)}; {ranked_at(output, fields, self.label)}")

    def observe(self, output: Any, fields: Fields) -> Any:
        return fields.label_of(output)

    def watching(self, fields: Fields) -> str:
        return "the label"

    def describe(self) -> str:
        return f"label = {self.label}"

    def spec(self) -> Any:
        return self.label


@dataclass(frozen=True)
class LabelInTopK(Expectation):
    label: Any
    k: int
    key: ClassVar[str] = "label_in_top_k"

    def subject(self) -> Any:
        return self.label

    def check(self, output: Any, fields: Fields) -> Check:
        try:
            position, _ = rank_of(fields.ranking(output), self.label)
        except LookupError as err:
            return self._result(False, str(err))
        passed = position is not None and position <= self.k
        return self._result(passed, ranked_at(output, fields, self.label))

    def observe(self, output: Any, fields: Fields) -> Any:
        try:
            return rank_of(fields.ranking(output), self.label)[0]
        except LookupError:
            return MISSING

    def watching(self, fields: Fields) -> str:
        return f"the rank of {self.label!r}"

    def describe(self) -> str:
        return f"{self.label} in top {self.k}"

    def spec(self) -> Any:
        return {"label": self.label, "k": self.k}


@dataclass(frozen=True)
class ProbabilityAtLeast(Expectation):
    value: float
    label: Any = None
    key: ClassVar[str] = "probability_at_least"

    def subject(self) -> Any:
        return self.label

    def probability(self, output: Any, fields: Fields) -> float | None:
        if self.label is None:
            p = fields.probability_of(output)
            return None if p is MISSING else float(p)
        position, p = rank_of(fields.ranking(output), self.label)
        return 0.0 if position is None else p

    def check(self, output: Any, fields: Fields) -> Check:
        try:
            p = self.probability(output, fields)
        except LookupError as err:
            return self._result(False, str(err))
        if p is None:
            return self._result(False, fields.missing("probability", output))
        if self.label is None:
            seen = label_seen(output, fields)
        else:
            seen = f"{ranked_at(output, fields, self.label)}"
            if rank_of(fields.ranking(output), self.label)[0] is None:
                seen += ", counted as probability 0"
        return self._result(p >= self.value, seen)

    def observe(self, output: Any, fields: Fields) -> Any:
        try:
            return self.probability(output, fields)
        except LookupError:
            return MISSING

    def watching(self, fields: Fields) -> str:
        return "the probability" if self.label is None else f"the probability of {self.label!r}"

    def describe(self) -> str:
        of = "" if self.label is None else f"({self.label}) "
        return f"probability {of}>= {self.value:g}"

    def spec(self) -> Any:
        return self.value if self.label is None else {"label": self.label, "value": self.value}


@dataclass(frozen=True)
class ItemInTopK(Expectation):
    item: Any
    k: int
    list: str | None = None
    by: str | None = None  # the items' key
    key: ClassVar[str] = "item_in_top_k"

    def subject(self) -> Any:
        return self.item

    def position(self, output: Any, fields: Fields) -> tuple[int | None, float | None, int]:
        pairs = fields.items(output, self.list, self.by)
        position, p = rank_of(pairs, self.item)
        return position, p, len(pairs)

    def seen(self, output: Any, fields: Fields) -> str:
        position, p, n = self.position(output, fields)
        where_ = f" in {self.list}" if self.list else ""
        if position is None:
            return f"{self.item!r} is not among the {n} items{where_}"
        return f"{self.item!r} is at position {position} of {n}{where_}{percent(p)}"

    def check(self, output: Any, fields: Fields) -> Check:
        try:
            position, _, _ = self.position(output, fields)
        except LookupError as err:
            return self._result(False, str(err))
        return self._result(position is not None and position <= self.k, self.seen(output, fields))

    def observe(self, output: Any, fields: Fields) -> Any:
        try:
            return self.position(output, fields)[0]
        except LookupError:
            return MISSING

    def watching(self, fields: Fields) -> str:
        return f"the position of {self.item!r}"

    def describe(self) -> str:
        return f"{self.item} in top {self.k}"

    def spec(self) -> Any:
        out: dict[str, Any] = {"item": self.item, "k": self.k}
        if self.list:
            out["list"] = self.list
        if self.by:
            out["key"] = self.by
        return out


@dataclass(frozen=True)
class ItemAbsent(ItemInTopK):
    k: int | None = None  # type: ignore[assignment]
    key: ClassVar[str] = "item_absent"

    def check(self, output: Any, fields: Fields) -> Check:
        try:
            position, _, _ = self.position(output, fields)
        except LookupError as err:
            return self._result(False, str(err))
        passed = position is None or (self.k is not None and position > self.k)
        return self._result(passed, self.seen(output, fields))

    def describe(self) -> str:
        return f"{self.item} not in top {self.k}" if self.k else f"{self.item} absent"

    def spec(self) -> Any:
        out = super().spec()
        if self.k is None:
            del out["k"]
        return out


@dataclass(frozen=True)
class FieldEquals(Expectation):
    path: str
    value: Any
    key: ClassVar[str] = "field"

    def check(self, output: Any, fields: Fields) -> Check:
        seen = get_path(output, self.path)
        if seen is MISSING:
            return self._result(False, f"the output has no field {self.path!r}; its fields are {keys_of(output)}")
        return self._result(seen == self.value, f"{self.path} is {shorten(seen)}")

    def observe(self, output: Any, fields: Fields) -> Any:
        return get_path(output, self.path)

    def watching(self, fields: Fields) -> str:
        return self.path

    def describe(self) -> str:
        return f"{self.path} = {shorten(self.value, 40)}"

    def spec(self) -> Any:
        return {"path": self.path, "equals": self.value}


@dataclass(frozen=True)
class FieldMatches(FieldEquals):
    value: Any = None
    pattern: str = ""

    def check(self, output: Any, fields: Fields) -> Check:
        seen = get_path(output, self.path)
        if seen is MISSING:
            return self._result(False, f"the output has no field {self.path!r}; its fields are {keys_of(output)}")
        text = seen if isinstance(seen, str) else str(seen)
        return self._result(re.search(self.pattern, text) is not None, f"{self.path} is {shorten(seen)}")

    def describe(self) -> str:
        return f"{self.path} matches /{self.pattern}/"

    def spec(self) -> Any:
        return {"path": self.path, "matches": self.pattern}


# The bounds of a range, as written and as compared: (name, symbol, test of value against bound).
BOUNDS: dict[str, tuple[str, Any]] = {
    "at_least": (">=", lambda v, b: v >= b),
    "above": (">", lambda v, b: v > b),
    "at_most": ("<=", lambda v, b: v <= b),
    "below": ("<", lambda v, b: v < b),
}


@dataclass(frozen=True)
class InRange(Expectation):
    """A number of the output within bounds: its score (`path` None) or the field at `path`."""

    bounds: tuple[tuple[str, float], ...]  # (name in BOUNDS, value), as written
    path: str | None = None
    key: ClassVar[str] = "score"

    def value(self, output: Any, fields: Fields) -> Any:
        if self.path is None:
            return fields.probability_of(output)
        seen = get_path(output, self.path)
        return float(seen) if isinstance(seen, (int, float)) and not isinstance(seen, bool) else MISSING

    def check(self, output: Any, fields: Fields) -> Check:
        v = self.value(output, fields)
        if v is MISSING:
            if self.path is None:
                return self._result(False, fields.missing("probability", output).replace("probability field", "score"))
            seen = get_path(output, self.path)
            if seen is MISSING:
                return self._result(False, f"the output has no field {self.path!r}; its fields are {keys_of(output)}")
            return self._result(False, f"{self.path} is {shorten(seen)}, not a number")
        passed = all(BOUNDS[name][1](v, bound) for name, bound in self.bounds)
        name = self.path or fields.path("probability", output) or "score"
        return self._result(passed, f"{name} is {v:g}")

    def observe(self, output: Any, fields: Fields) -> Any:
        return self.value(output, fields)

    def watching(self, fields: Fields) -> str:
        return self.path or "the score"

    def describe(self) -> str:
        name = self.path or "score"
        return " and ".join(f"{name} {BOUNDS[b][0]} {v:g}" for b, v in self.bounds)

    def spec(self) -> Any:
        out: dict[str, Any] = {} if self.path is None else {"path": self.path}
        out.update(dict(self.bounds))
        return out


@dataclass(frozen=True)
class QueueEquals(Expectation):
    queue: Any
    key: ClassVar[str] = "queue"

    def check(self, output: Any, fields: Fields) -> Check:
        seen = get_path(output, fields.queue)
        if seen is MISSING:
            return self._result(
                False,
                f"the output has no {fields.queue} (its fields are {keys_of(output)}): routing to a queue "
                f"needs rules that decide one, or name the field with `fields: {{queue: <path>}}`",
            )
        return self._result(seen == self.queue, f"routed to queue {seen!r}")

    def observe(self, output: Any, fields: Fields) -> Any:
        return get_path(output, fields.queue)

    def watching(self, fields: Fields) -> str:
        return fields.queue

    def describe(self) -> str:
        return f"routed to {self.queue}"

    def spec(self) -> Any:
        return self.queue


def first_failing(expectations: list[Expectation], output: Any, fields: Fields) -> tuple[Expectation, Check] | None:
    for e in expectations:
        check = e.check(output, fields)
        if not check.passed:
            return e, check
    return None
