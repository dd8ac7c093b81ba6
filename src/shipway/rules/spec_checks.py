"""Load-time checks of a spec against the service's schemas and labels.

A rule's `when` must be true/false and what it sets must fit the output; a table's
hit policy, outputs and cells must agree with its columns; the default answer must
be an output the schema accepts. Each is an error at its exact line and column.
The expressions are typed in `inference.py`; which rows can fire is in `reach.py`.
"""

from __future__ import annotations

from typing import Any

from shipway.common.suggest import did_you_mean
from shipway.rules import expressions as ex
from shipway.rules.cells import Cell, Interval
from shipway.rules.diagnostics import Spot, describe
from shipway.rules.inference import BOOLEAN, STRING, ExpressionTyper, text_of, value_of
from shipway.rules.model import SINGLE_HIT, Rule, Spec, Table
from shipway.rules.types import Type, type_of_value

__all__ = ["Checker"]

DECISION_TYPES = {"queue": STRING, "reason": STRING, "review": BOOLEAN, "fallback": BOOLEAN}


class Checker(ExpressionTyper):
    """Checks a spec's rules, tables and default answer against the service's schemas."""

    # -- the spec --------------------------------------------------------------

    def check(self, spec: Spec) -> None:
        for step in spec.steps:
            if isinstance(step, Rule):
                self.rule(step)
            else:
                self.table(step)

    def rule(self, rule: Rule) -> None:
        if rule.when is not None and rule.when_spot is not None:
            t = self.infer(rule.when, rule.when_spot)
            self.condition(t, rule.when, rule.when_spot, f"the `when` of rule {rule.name!r}")
        for field, (expr, spot, key_spot) in rule.actions.set.items():
            self.assign(field, self.infer(expr, spot), expr, spot, key_spot)

    def assign(self, field: str, t: Type, expr: ex.Node, spot: Spot, key_spot: Spot | None = None) -> None:
        """`set: {field: expr}` and `set.field` outputs: the field must exist and take that type."""
        if isinstance(expr, ex.Const) and expr.value is None:
            self.diags.error(spot, f"set {field}: null is a missing value, and setting one changes nothing", expr.pos)
            return
        if not self.output_checked:
            return
        output = self.roots["output"]
        target = self.schemas["output"].attribute(output, field)
        if target is None:
            options = self.schemas["output"].fields(output)
            self.diags.error(
                key_spot or spot,
                f"set: unknown output field {field!r}{did_you_mean(field, options, aside=True)}; "
                f"the output has {', '.join(options) or 'no fields'}",
                0 if key_spot else expr.pos,
            )
            return
        known, wanted = t.known, target.known
        if known is not None and wanted is not None:
            if not known and "null" not in (target.kinds or ()):
                self.diags.error(spot, f"set {field}: the output field {field!r} cannot be null", expr.pos)
            elif known and not known & wanted:
                self.diags.error(
                    spot,
                    f"set {field}: {text_of(expr)} is {t.describe()}, but output.{field} is {target.describe()}",
                    expr.pos,
                )

    def answer(self, answer: dict[str, Any], spot: Spot | None) -> None:
        """The default answer must be an output the schema accepts, field by field."""
        if not self.output_checked:
            return
        output = self.roots["output"]
        for name, value in answer.items():
            target = self.schemas["output"].attribute(output, str(name))
            if target is None:
                options = self.schemas["output"].fields(output)
                self.diags.error(
                    spot, f"default answer: unknown output field {name!r}{did_you_mean(str(name), options, aside=True)}"
                )
            elif (
                target.known is not None
                and type_of_value(value).kinds
                and not (type_of_value(value).kinds or frozenset()) & (target.kinds or frozenset())
            ):
                self.diags.error(
                    spot, f"default answer: {name} is {describe(value)}, but the output's {name} is {target.describe()}"
                )
        for name in self._required(output):
            if name not in answer:
                self.diags.error(spot, f"default answer: the output field {name!r} is required; give it a value")

    @staticmethod
    def _required(t: Type) -> list[str]:
        names: list[str] = []
        for schema in t.schemas:
            names.extend(n for n in schema.get("required", []) if n not in names)
        return names

    def table(self, table: Table) -> None:
        columns = [self.infer(node, spot) for node, spot in zip(table.inputs, table.input_spots, strict=True)]
        for row in table.rows:
            for cell, spot, column, node in zip(row.cells, row.cell_spots, columns, table.inputs, strict=True):
                self.cell(cell, spot, column, node)
        self.table_outputs(table)

    def table_outputs(self, table: Table) -> None:
        policy = table.hit_policy
        if policy and policy not in SINGLE_HIT:
            for output in table.outputs:
                if output.field is None:
                    self.diags.error(
                        output.spot,
                        f"table {table.name!r}: with hit_policy {policy} every matching row gives a value, so "
                        f"outputs are lists and must be set.<field>; {output.name} takes one value: "
                        "use hit_policy first, unique, any or priority to choose it",
                    )
        if table.aggregation and len(table.outputs) != 1:
            self.diags.error(
                table.spot, f"table {table.name!r}: aggregation {table.aggregation} needs exactly one output"
            )
        if policy == "priority" and not any(o.values for o in table.outputs):
            self.diags.error(
                table.spot,
                f"table {table.name!r}: hit_policy priority needs the output values in priority order, "
                "e.g. outputs: [{name: queue, values: [urgent, review, general]}]",
            )
        for index, output in enumerate(table.outputs):
            expected = DECISION_TYPES.get(output.name)
            target = None
            if output.field is not None and self.output_checked:
                target = self.schemas["output"].attribute(self.roots["output"], output.field)
                if target is None:
                    options = self.schemas["output"].fields(self.roots["output"])
                    self.diags.error(
                        output.spot,
                        f"unknown output field {output.field!r}{did_you_mean(output.field, options, aside=True)}",
                    )
                    continue
            for row in table.rows:
                node = row.outputs[index]
                if node is None:
                    continue
                spot = row.output_spots[index]
                t = self.infer(node, spot)
                if expected is not None and t.known and expected.known and not t.known & expected.known:
                    self.diags.error(
                        spot, f"{output.name} must be {expected.describe()}, not {describe(value_of(node))}", node.pos
                    )
                if table.aggregation in ("sum", "min", "max") and not t.can_be("number"):
                    self.diags.error(
                        spot, f"aggregation {table.aggregation} needs numbers, not {t.describe()}", node.pos
                    )
                if output.field is not None and table.aggregation is None and policy in SINGLE_HIT:
                    self.assign(output.field, t, node, spot)
                if output.values is not None:
                    if not isinstance(node, ex.Const):
                        self.diags.error(
                            spot, f"{output.name} has a list of values, so its cells must be one of them", node.pos
                        )
                    elif node.value not in output.values:
                        self.diags.error(
                            spot,
                            f"{describe(node.value)} is not one of the values of {output.name}: "
                            f"{', '.join(map(str, output.values))}",
                            node.pos,
                        )

    def cell(self, cell: Cell, spot: Spot, column: Type, node: ex.Node) -> None:
        for test in cell.tests:
            if isinstance(test, Interval):
                for bound in (test.low, test.high):
                    t = self.infer(bound, spot)
                    if not t.can_be("number"):
                        self.diags.error(spot, f"interval bounds must be numbers, not {t.describe()}", bound.pos)
                if not column.can_be("number"):
                    self.diags.error(
                        spot, f"an interval tests a number, but {text_of(node)} is {column.describe()}", test.pos
                    )
            elif test.expr is not None:
                self.compare(test.op, node, column, test.expr, self.infer(test.expr, spot), spot, test.pos)
