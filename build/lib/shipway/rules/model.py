"""The parsed rules file: what the loader builds and the checker and compiler read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipway.rules.cells import Cell
from shipway.rules.diagnostics import Spot
from shipway.rules.expressions import Node

__all__ = ["AGGREGATIONS", "HIT_POLICIES", "Actions", "Defaults", "Output", "Row", "Rule", "Spec", "Table"]

HIT_POLICIES = ("first", "unique", "priority", "any", "collect", "rule_order")
AGGREGATIONS = ("count", "sum", "min", "max")
# The letters and symbols of the DMN standard, read as the names above.
HIT_POLICY_ALIASES = {
    "f": ("first", None),
    "u": ("unique", None),
    "p": ("priority", None),
    "a": ("any", None),
    "c": ("collect", None),
    "r": ("rule_order", None),
    "rule order": ("rule_order", None),
    "c+": ("collect", "sum"),
    "c#": ("collect", "count"),
    "c<": ("collect", "min"),
    "c>": ("collect", "max"),
}
SINGLE_HIT = ("first", "unique", "priority", "any")
DECISION_OUTPUTS = ("queue", "review", "reason", "fallback")


@dataclass
class Actions:
    """What a rule does when it fires. None: leave that part of the decision as it is."""

    queue: str | None = None
    review: bool | None = None
    reason: str | None = None
    fallback: bool | None = None
    set: dict[str, tuple[Node, Spot, Spot]] = field(default_factory=dict)  # field -> (value, its spot, key spot)


@dataclass
class Rule:
    name: str
    when: Node | None  # None: always
    actions: Actions
    stop: bool
    spot: Spot  # the rule's first key, for whole-rule diagnostics
    when_spot: Spot | None = None


@dataclass
class Output:
    """A table output column: `queue`, `review`, `reason`, `fallback` or `set.<field>`."""

    name: str
    spot: Spot
    values: tuple[Any, ...] | None = None  # the allowed values, in priority order

    @property
    def field(self) -> str | None:
        return self.name[4:] if self.name.startswith("set.") else None


@dataclass
class Row:
    number: int  # 1-based, as shown in `fired`
    cells: list[Cell]
    outputs: list[Node | None]  # None: `-`, no output
    spot: Spot
    cell_spots: list[Spot] = field(default_factory=list)
    output_spots: list[Spot] = field(default_factory=list)


@dataclass
class Table:
    name: str
    hit_policy: str
    aggregation: str | None
    inputs: list[Node]
    input_spots: list[Spot]
    outputs: list[Output]
    rows: list[Row]
    spot: Spot

    def row_name(self, row: Row) -> str:
        return f"{self.name}#{row.number}"


@dataclass
class Defaults:
    queue: str | None = None
    review: bool = False
    reason: str | None = None
    answer: Any = None
    answer_spot: Spot | None = None


@dataclass
class Spec:
    version: str | None
    defaults: Defaults
    steps: list[Rule | Table]
