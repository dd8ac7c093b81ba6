"""The expression language: Python's expression syntax, cut down to a safe whitelist.

Text is parsed with `ast.parse(mode="eval")` and every node is checked against
a whitelist and converted to the small tree below; nothing else is ever built,
and the tree, not the text, is what gets compiled. So a rule cannot call
anything but the listed functions, read attributes of Python objects, loop,
import, or build huge values: those are rejected here, at load time.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any

from shipway.common.suggest import did_you_mean
from shipway.rules.diagnostics import Diagnostics, Spot

__all__ = [
    "FUNCTIONS",
    "ROOTS",
    "BoolOp",
    "Call",
    "Compare",
    "Const",
    "Field",
    "IfElse",
    "ListExpr",
    "Math",
    "Neg",
    "Node",
    "Not",
    "parse_expression",
]

ROOTS = ("input", "output", "meta")
CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
# name -> (fewest, most) arguments
FUNCTIONS: dict[str, tuple[int, int]] = {
    "missing": (1, 1),
    "present": (1, 1),
    "coalesce": (2, 16),
    "lower": (1, 1),
    "upper": (1, 1),
    "length": (1, 1),
    "len": (1, 1),
    "contains": (2, 2),
    "startswith": (2, 2),
    "endswith": (2, 2),
    "matches": (2, 2),
    "abs": (1, 1),
    "min": (1, 16),
    "max": (1, 16),
    "round": (1, 2),
}
MAX_LENGTH = 4000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_EXPONENT = 64
BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")

COMPARE_OPS: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
MATH_OPS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
REFUSED: dict[str, str] = {
    "Lambda": "lambdas",
    "ListComp": "comprehensions",
    "SetComp": "comprehensions",
    "DictComp": "comprehensions",
    "GeneratorExp": "generator expressions",
    "NamedExpr": "assignments (:=)",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
    "Starred": "* unpacking",
    "JoinedStr": "f-strings",
    "FormattedValue": "f-strings",
    "Dict": "dict literals",
    "Set": "set literals (write a list: [a, b])",
    "Slice": "slices",
    "Subscript": "indexing anything but fields",
    "Attribute": "attributes of anything but input, output and meta",
}


@dataclass(frozen=True, slots=True)
class Node:
    pos: int  # offset of the node in the spot's text


@dataclass(frozen=True, slots=True)
class Const(Node):
    value: Any


@dataclass(frozen=True, slots=True)
class Field(Node):
    """`root.a[0].b`: steps are str keys, int indices, or a Node for a computed index."""

    root: str
    steps: tuple[Any, ...] = ()

    @property
    def dynamic(self) -> bool:
        return any(isinstance(s, Node) for s in self.steps)

    def dotted(self) -> str:
        text = self.root
        for step in self.steps:
            if isinstance(step, str):
                text += f".{step}" if step.isidentifier() else f"[{step!r}]"
            elif isinstance(step, int):
                text += f"[{step}]"
            else:
                text += "[...]"
        return text


@dataclass(frozen=True, slots=True)
class ListExpr(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    ops: tuple[str, ...]
    operands: tuple[Node, ...]  # one more than ops


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # "and" | "or"
    values: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class Math(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class IfElse(Node):
    test: Node
    body: Node
    orelse: Node


class _Refused(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


def parse_expression(
    text: str, diags: Diagnostics, spot: Spot, base: int = 0, *, bare_words: bool = False
) -> Node | None:
    """Parse and whitelist `text`; on failure record an error and return None.

    `base` is where `text` starts in the spot's text. With `bare_words`, a
    lone word such as `urgent` is the string "urgent" (table cells, set values).
    """
    stripped = text.strip()
    lead = base + (len(text) - len(text.lstrip()))
    if bare_words and BARE_WORD.fullmatch(stripped) and stripped not in ROOTS and stripped not in CONSTANTS:
        return Const(lead, stripped)
    if not stripped:
        diags.error(spot, "empty expression; write a condition such as output.probability < 0.5", base)
        return None
    if len(text) > MAX_LENGTH:
        diags.error(spot, f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}", base)
        return None
    try:
        tree = ast.parse(text.lstrip() if "\n" not in text else "(" + text + "\n)", mode="eval")
    except SyntaxError as err:
        diags.error(spot, _syntax_message(err, stripped), base + _syntax_offset(err, text))
        return None
    except (ValueError, RecursionError, MemoryError, OverflowError) as err:
        diags.error(spot, f"expression cannot be parsed: {err}", lead)
        return None
    wrapped = "\n" in text
    converter = _Converter(text.lstrip() if not wrapped else "(" + text + "\n)", base, lead, wrapped)
    try:
        converter.check_size(tree.body)
        return converter.convert(tree.body, 0)
    except _Refused as err:
        diags.error(spot, err.message, err.pos)
        return None


def _syntax_message(err: SyntaxError, text: str) -> str:
    msg = err.msg
    if re.search(r"(?<![=!<>])=(?!=)", text):
        return f"invalid expression ({msg}); compare with ==, not ="
    if "&&" in text or "||" in text:
        return f"invalid expression ({msg}); write and, or, not"
    return f"invalid expression: {msg}"


def _syntax_offset(err: SyntaxError, text: str) -> int:
    lead = len(text) - len(text.lstrip())
    if err.lineno is None or err.offset is None:
        return lead
    if "\n" in text:  # parsed as "(" + text: line 1 is shifted by one
        lines = text.split("\n")
        row = min(max(err.lineno - 1, 0), len(lines) - 1)
        col = max(err.offset - 1 - (1 if row == 0 else 0), 0)
        return sum(len(line) + 1 for line in lines[:row]) + min(col, len(lines[row]))
    return lead + min(max(err.offset - 1, 0), len(text) - lead)


class _Converter:
    def __init__(self, parsed: str, base: int, lead: int, wrapped: bool) -> None:
        self.lines = parsed.split("\n")
        self.base = base
        self.lead = lead
        self.wrapped = wrapped

    def pos(self, node: ast.AST) -> int:
        lineno = getattr(node, "lineno", 1)
        byte_col = getattr(node, "col_offset", 0)
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        col = len(line.encode()[:byte_col].decode(errors="ignore"))
        if not self.wrapped:
            return self.lead + col
        # The text was parsed as "(" + text: undo the added parenthesis.
        offset = sum(len(ln) + 1 for ln in self.lines[: lineno - 1]) + col
        return self.base + max(offset - 1, 0)

    def end(self, node: ast.AST) -> int:
        """The offset just past `node` (for pointing at an attribute's name)."""
        line, col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
        end_line = line if isinstance(line, int) else 1
        end_col = col if isinstance(col, int) else 0
        shadow = ast.Constant(value=None)
        shadow.lineno, shadow.col_offset = end_line, end_col
        return self.pos(shadow)

    def check_size(self, tree: ast.AST) -> None:
        count = 0
        stack: list[tuple[ast.AST, int]] = [(tree, 1)]
        while stack:
            node, depth = stack.pop()
            count += 1
            if count > MAX_NODES:
                raise _Refused(self.pos(tree), f"expression is too large (over {MAX_NODES} parts); split the rule")
            if depth > MAX_DEPTH:
                raise _Refused(self.pos(node), f"expression is nested too deeply (over {MAX_DEPTH} levels)")
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))

    def refuse(self, node: ast.AST, message: str) -> _Refused:
        return _Refused(self.pos(node), message)

    def convert(self, node: ast.AST, depth: int) -> Node:
        pos = self.pos(node)
        if isinstance(node, ast.Constant):
            return Const(pos, self.constant(node))
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return Const(pos, CONSTANTS[node.id])
            if node.id in ROOTS:
                return Field(pos, node.id)
            if node.id in FUNCTIONS:
                raise self.refuse(node, f"{node.id} is a function; call it: {node.id}(...)")
            raise self.refuse(
                node,
                f"unknown name {node.id!r}{did_you_mean(node.id, ROOTS, aside=True)}: fields are written "
                f'input.<field>, output.<field> or meta.<field>; text is quoted: "{node.id}"',
            )
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            return self.field(node, depth)
        if isinstance(node, ast.Compare):
            ops: list[str] = []
            for cmp in node.ops:
                if type(cmp) not in COMPARE_OPS:
                    hint = "missing(x) or present(x)" if isinstance(cmp, (ast.Is, ast.IsNot)) else "== or !="
                    raise self.refuse(node, f"'is' comparisons are not supported; use {hint}")
                ops.append(COMPARE_OPS[type(cmp)])
            operands = (node.left, *node.comparators)
            return Compare(pos, tuple(ops), tuple(self.convert(o, depth + 1) for o in operands))
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            return BoolOp(pos, word, tuple(self.convert(v, depth + 1) for v in node.values))
        if isinstance(node, ast.UnaryOp):
            operand = self.convert(node.operand, depth + 1)
            if isinstance(node.op, ast.Not):
                return Not(pos, operand)
            if isinstance(node.op, ast.USub):
                if isinstance(operand, Const) and _is_number(operand.value):
                    return Const(pos, -operand.value)
                return Neg(pos, operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            raise self.refuse(node, "operator ~ is not supported")
        if isinstance(node, ast.BinOp):
            if type(node.op) not in MATH_OPS:
                symbol = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}.get(
                    type(node.op), "@"
                )
                hint = "; write and / or" if symbol in ("&", "|") else ""
                raise self.refuse(node, f"operator {symbol} is not supported{hint}")
            symbol = MATH_OPS[type(node.op)]
            left = self.convert(node.left, depth + 1)
            right = self.convert(node.right, depth + 1)
            if symbol == "**" and not (
                isinstance(right, Const) and _is_number(right.value) and abs(right.value) <= MAX_EXPONENT
            ):
                raise self.refuse(
                    node.right,
                    f"exponents must be a number written in the rule, from -{MAX_EXPONENT} to {MAX_EXPONENT}",
                )
            return Math(pos, symbol, left, right)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, (ast.List, ast.Tuple)):
            return ListExpr(pos, tuple(self.convert(e, depth + 1) for e in node.elts))
        if isinstance(node, ast.IfExp):
            return IfElse(
                pos,
                self.convert(node.test, depth + 1),
                self.convert(node.body, depth + 1),
                self.convert(node.orelse, depth + 1),
            )
        what = REFUSED.get(type(node).__name__, type(node).__name__)
        raise self.refuse(node, f"{what} are not allowed in rules" if what.endswith("s") else f"{what} is not allowed")

    def constant(self, node: ast.Constant) -> Any:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.refuse(node, f"number {value} is out of range")
            return value
        raise self.refuse(node, f'{type(value).__name__} literals are not allowed; use numbers, "text", true, false')

    def field(self, node: ast.Attribute | ast.Subscript, depth: int) -> Field:
        steps: list[Any] = []
        current: ast.AST = node
        while isinstance(current, (ast.Attribute, ast.Subscript)):
            if isinstance(current, ast.Attribute):
                if current.attr.startswith("_"):
                    raise _Refused(
                        self.end(current) - len(current.attr),
                        f"{current.attr!r}: names starting with _ are not allowed (no Python internals)",
                    )
                steps.append(current.attr)
            else:
                steps.append(self.index(current.slice, depth))
            current = current.value
        if not (isinstance(current, ast.Name) and current.id in ROOTS):
            if isinstance(current, ast.Name) and current.id not in FUNCTIONS and current.id not in CONSTANTS:
                return self.convert(current, depth)  # type: ignore[return-value]  # raises the unknown-name error
            if isinstance(node, ast.Attribute) and isinstance(current, (ast.Name, ast.Constant, ast.Call)):
                name = node.attr
                hint = f"; call {name}(x) instead of x.{name}()" if name in FUNCTIONS else ""
                raise self.refuse(node, f"attributes and methods are only for input, output and meta fields{hint}")
            if isinstance(current, ast.Name):
                return self.convert(current, depth)  # type: ignore[return-value]  # raises the unknown-name error
            raise self.refuse(node, "only input, output and meta fields can be indexed or have attributes")
        return Field(self.pos(node), current.id, tuple(reversed(steps)))

    def index(self, node: ast.AST, depth: int) -> Any:
        if isinstance(node, ast.Slice):
            raise self.refuse(node, "slices are not supported; index one item, e.g. output.alternatives[0]")
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)) and not isinstance(node.value, bool):
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) is int
        ):
            return -node.operand.value
        return self.convert(node, depth + 1)

    def call(self, node: ast.Call, depth: int) -> Call:
        func = node.func
        if isinstance(func, ast.Attribute):
            hint = f": write {func.attr}(x), not x.{func.attr}()" if func.attr in FUNCTIONS else ""
            raise self.refuse(node, f"methods cannot be called{hint}")
        if not isinstance(func, ast.Name):
            raise self.refuse(node, "only the built-in rule functions can be called")
        if func.id not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.refuse(
                node,
                f"unknown function {func.id!r}{did_you_mean(func.id, FUNCTIONS, aside=True)}; the functions are: {known}",
            )
        if node.keywords:
            raise self.refuse(node, f"{func.id}() takes no keyword arguments")
        fewest, most = FUNCTIONS[func.id]
        if not fewest <= len(node.args) <= most:
            wanted = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise self.refuse(node, f"{func.id}() takes {wanted} arguments, not {len(node.args)}")
        args = tuple(self.convert(a, depth + 1) for a in node.args)
        if func.id == "matches" and not (isinstance(args[1], Const) and isinstance(args[1].value, str)):
            raise self.refuse(node.args[1], 'matches() needs its pattern written as a "quoted" string')
        return Call(self.pos(node), func.id, args)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
