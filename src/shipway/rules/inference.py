"""Typing the expressions of a spec from the service's schemas.

Every expression node gets a Type (what JSON kinds it can be, and for outputs the
labels it can take); an unknown field, a comparison that can never hold, a function
given the wrong kind of value are recorded as errors at their exact line and column.
`check.py` uses these types for the spec's own checks (rules, tables, the default
answer).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from shipway.common.suggest import did_you_mean
from shipway.rules import expressions as ex
from shipway.rules.diagnostics import Diagnostics, Spot, describe
from shipway.rules.runtime import compile_pattern
from shipway.rules.types import ANY, SchemaTypes, Type, type_of_value, union

__all__ = ["BOOLEAN", "NUMBER", "STRING", "ExpressionTyper", "text_of", "value_of"]

BOOLEAN = Type(frozenset({"boolean"}))
NUMBER = Type(frozenset({"number"}))
STRING = Type(frozenset({"string"}))
ORDERED = ("<", "<=", ">", ">=")


class ExpressionTyper:
    """Types expressions, recording diagnostics; `types` maps id(node) to its Type."""

    def __init__(
        self,
        diags: Diagnostics,
        *,
        input_schema: dict[str, Any] | None,
        output_schema: dict[str, Any] | None,
        meta_schema: dict[str, Any] | None,
        labels: Collection[str] | None,
    ) -> None:
        self.diags = diags
        self.schemas = {
            "input": SchemaTypes(input_schema),
            "output": SchemaTypes(output_schema, labels=labels),
            "meta": SchemaTypes(meta_schema),
        }
        self.roots = {name: s.root() for name, s in self.schemas.items()}
        self.labels = frozenset(labels) if labels is not None else None
        self.output_checked = output_schema is not None
        self.types: dict[int, Type] = {}
        self.paths: dict[str, Type] = {}  # dotted field -> type, for the reachability checks

    def condition(self, t: Type, node: ex.Node, spot: Spot, what: str) -> None:
        if not t.can_be("boolean"):
            self.diags.error(
                spot,
                f"{what} is {t.describe()}, not true/false; compare it, e.g. `{text_of(node)} == ...`, "
                "or test it with present(...)",
                node.pos,
            )

    def infer(self, node: ex.Node, spot: Spot) -> Type:
        t = self._infer(node, spot)
        self.types[id(node)] = t
        return t

    def _infer(self, node: ex.Node, spot: Spot) -> Type:
        if isinstance(node, ex.Const):
            return type_of_value(node.value)
        if isinstance(node, ex.Field):
            return self.field(node, spot)
        if isinstance(node, ex.ListExpr):
            for item in node.items:
                self.infer(item, spot)
            return Type(frozenset({"array"}))
        if isinstance(node, ex.Compare):
            types = [self.infer(o, spot) for o in node.operands]
            for i, op in enumerate(node.ops):
                self.compare(op, node.operands[i], types[i], node.operands[i + 1], types[i + 1], spot, node.pos)
            return BOOLEAN
        if isinstance(node, (ex.BoolOp, ex.Not)):
            values = node.values if isinstance(node, ex.BoolOp) else (node.operand,)
            word = node.op if isinstance(node, ex.BoolOp) else "not"
            for value in values:
                t = self.infer(value, spot)
                if not t.can_be("boolean"):
                    self.diags.error(
                        spot,
                        f"{word} needs true/false values, but {text_of(value)} is {t.describe()}; "
                        "compare it, or use present(...)/missing(...)",
                        value.pos,
                    )
            return BOOLEAN
        if isinstance(node, ex.Math):
            return self.math(node, spot)
        if isinstance(node, ex.Neg):
            t = self.infer(node.operand, spot)
            if not t.can_be("number"):
                self.diags.error(spot, f"- needs a number, but {text_of(node.operand)} is {t.describe()}", node.pos)
            return NUMBER
        if isinstance(node, ex.Call):
            return self.call(node, spot)
        if isinstance(node, ex.IfElse):
            self.condition(self.infer(node.test, spot), node.test, spot, "the test of `... if ... else ...`")
            return union([self.infer(node.body, spot), self.infer(node.orelse, spot)])
        return ANY

    def field(self, node: ex.Field, spot: Spot) -> Type:
        schema = self.schemas[node.root]
        t = self.roots[node.root]
        path = node.root
        for step in node.steps:
            if isinstance(step, ex.Node):
                index_type = self.infer(step, spot)
                t = schema.item(t, None) if t.can_be("array") else schema.attribute(t, "") or ANY
                if not index_type.can_be("number", "string"):
                    self.diags.error(spot, f"an index must be a number or text, not {index_type.describe()}", step.pos)
                path += "[...]"
                continue
            if isinstance(step, int):
                if not t.can_be("array", "string"):
                    self.diags.error(spot, f"{path} is {t.describe()}; it has no items to index", node.pos)
                    return ANY
                t = schema.item(t, step)
                path += f"[{step}]"
                continue
            if not t.can_be("object"):
                self.diags.error(spot, f"{path} is {t.describe()}; it has no field {step!r}", node.pos)
                return ANY
            found = schema.attribute(t, step)
            if found is None:
                options = schema.fields(t)
                hint = did_you_mean(step, options, aside=True, prefix=f"{path}.")
                listing = f"; {path} has {', '.join(options)}" if options and not hint else ""
                self.diags.error(spot, f"unknown field {path}.{step}{hint}{listing}", node.pos)
                return ANY
            t = found
            path += f".{step}"
        if not node.dynamic:
            self.paths[node.dotted()] = t
        return t

    def compare(self, op: str, left: ex.Node, lt: Type, right: ex.Node, rt: Type, spot: Spot, pos: int) -> None:
        if op in ("in", "not in"):
            self.membership(left, lt, right, rt, spot, pos)
            return
        for node in (left, right):
            if isinstance(node, ex.Const) and node.value is None:
                self.diags.error(
                    spot,
                    f"comparing with null is always false (a comparison with a missing value is false); "
                    f"use missing({text_of(right if node is left else left)}) or present(...)",
                    pos,
                )
                return
        a, b = lt.known, rt.known
        if op in ORDERED:
            for t, n in ((lt, left), (rt, right)):
                if t.known and not t.known & {"number", "string"}:
                    self.diags.error(spot, f"{op} needs numbers or text, but {text_of(n)} is {t.describe()}", pos)
                    return
        if a and b and not a & b:
            self.diags.error(
                spot,
                f"type mismatch: {text_of(left)} is {lt.describe()} and {text_of(right)} is {rt.describe()}, "
                f"so {op} is never true",
                pos,
            )
            return
        if op in ("==", "!="):
            self.literal(lt, right, spot, left)
            self.literal(rt, left, spot, right)

    def membership(self, left: ex.Node, lt: Type, right: ex.Node, rt: Type, spot: Spot, pos: int) -> None:
        if isinstance(right, ex.ListExpr):
            for item in right.items:
                it = self.types.get(id(item), ANY)
                if lt.known and it.known and not lt.known & it.known:
                    self.diags.error(
                        spot,
                        f"type mismatch: {text_of(left)} is {lt.describe()} but the list holds {describe(value_of(item))}",
                        item.pos,
                    )
                else:
                    self.literal(lt, item, spot, left)
            return
        if rt.only("string"):
            if lt.known and not lt.known & {"string"}:
                self.diags.error(spot, f"`in` text looks for text, but {text_of(left)} is {lt.describe()}", pos)
            return
        if rt.known is not None and not rt.known & {"array", "string", "object"}:
            self.diags.error(spot, f"`in` needs a list or text on its right, not {rt.describe()}", right.pos)
            return
        if rt.can_be("array") and isinstance(right, ex.Field):
            item_type = self.schemas[right.root].item(rt, None)
            self.literal(item_type, left, spot, right)

    def literal(self, t: Type, node: ex.Node, spot: Spot, field: ex.Node) -> None:
        """A text literal compared with a field that has enum values or holds labels."""
        if not (isinstance(node, ex.Const) and isinstance(node.value, str)):
            return
        value = node.value
        if t.enum is not None and value not in t.enum:
            options = sorted(map(str, t.enum))
            self.diags.error(
                spot,
                f"{text_of(field)} can never be {value!r}{did_you_mean(value, options, aside=True)}; "
                f"its values are {', '.join(options[:12])}{'...' if len(options) > 12 else ''}",
                node.pos,
            )
        elif t.label and self.labels is not None and value not in self.labels:
            self.diags.error(
                spot,
                f"{value!r} is not a label the model can output{did_you_mean(value, self.labels, aside=True)}; "
                f"{text_of(field)} holds one of the model's {len(self.labels)} labels",
                node.pos,
            )

    def math(self, node: ex.Math, spot: Spot) -> Type:
        lt, rt = self.infer(node.left, spot), self.infer(node.right, spot)
        if node.op == "+" and lt.only("string") and rt.only("string"):
            return STRING
        for t, n in ((lt, node.left), (rt, node.right)):
            if not t.can_be("number") and not (node.op == "+" and t.can_be("string")):
                self.diags.error(spot, f"{node.op} needs numbers, but {text_of(n)} is {t.describe()}", n.pos)
        if (
            node.op == "+"
            and (lt.only("string") or rt.only("string"))
            and not (lt.only("string") and rt.only("string"))
        ):
            other = node.right if lt.only("string") else node.left
            if (rt if lt.only("string") else lt).only("number"):
                self.diags.error(
                    spot, f"+ joins text with text or adds numbers; {text_of(other)} is a number", node.pos
                )
        if node.op == "+" and not (lt.only("number") and rt.only("number")):
            return Type(frozenset({"number", "string", "null"}))
        return Type(frozenset({"number", "null"}))

    def call(self, node: ex.Call, spot: Spot) -> Type:
        types = [self.infer(a, spot) for a in node.args]
        name = node.name

        def need(index: int, *kinds: str) -> None:
            if not types[index].can_be(*kinds):
                wanted = " or ".join(
                    {"string": "text", "array": "a list", "object": "an object"}.get(k, k) for k in kinds
                )
                self.diags.error(
                    spot,
                    f"{name}() needs {wanted}, but {text_of(node.args[index])} is {types[index].describe()}",
                    node.args[index].pos,
                )

        if name in ("missing", "present"):
            if not isinstance(node.args[0], ex.Field):
                self.diags.error(spot, f"{name}() takes a field, e.g. {name}(output.intent)", node.pos)
            return BOOLEAN
        if name == "coalesce":
            return union([Type(t.known) if t.known is not None else ANY for t in types])
        if name in ("lower", "upper"):
            need(0, "string")
            return Type(frozenset({"string", "null"}))
        if name in ("length", "len"):
            need(0, "string", "array", "object")
            return Type(frozenset({"number", "null"}))
        if name == "contains":
            need(0, "string", "array")
            if types[0].only("string"):
                need(1, "string")
            elif isinstance(node.args[0], ex.Field) and types[0].can_be("array"):
                item = self.schemas[node.args[0].root].item(types[0], None)
                self.literal(item, node.args[1], spot, node.args[0])
            return BOOLEAN
        if name in ("startswith", "endswith", "matches"):
            need(0, "string")
            need(1, "string")
            if name == "matches" and isinstance(node.args[1], ex.Const):
                problem = compile_pattern(str(node.args[1].value))[1]
                if problem:
                    self.diags.error(spot, f"matches(): {problem}", node.args[1].pos)
            return BOOLEAN
        if name in ("abs", "round"):
            need(0, "number")
            if name == "round" and len(types) > 1:
                need(1, "number")
            return Type(frozenset({"number", "null"}))
        if name in ("min", "max"):
            for i in range(len(types)):
                need(i, "number", "string")
            return union([Type(t.known) if t.known is not None else ANY for t in types])
        return ANY


def text_of(node: ex.Node) -> str:
    """A short rendering of an expression for messages."""
    if isinstance(node, ex.Const):
        return "null" if node.value is None else repr(node.value) if isinstance(node.value, str) else str(node.value)
    if isinstance(node, ex.Field):
        return node.dotted()
    if isinstance(node, ex.Call):
        return f"{node.name}({', '.join(text_of(a) for a in node.args)})"
    if isinstance(node, ex.Math):
        return f"{text_of(node.left)} {node.op} {text_of(node.right)}"
    return "the expression"


def value_of(node: ex.Node) -> Any:
    """A constant's value, or the text of any other expression (for messages)."""
    return node.value if isinstance(node, ex.Const) else text_of(node)
