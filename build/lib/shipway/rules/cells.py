"""Decision-table cells: DMN unary tests such as `-`, `< 0.5`, `[0.2..0.8]`, `"a", "b"`, `not("x")`.

An input cell is a comma-separated list of tests, any of which may match, or
`not(...)` around such a list. A test is an interval, a comparison with the
column's value (`< 0.5`, `!= "x"`), `null` (the value is missing), or a value
the column must equal. A bare word is text: `urgent` means "urgent".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shipway.rules.diagnostics import Diagnostics, Spot
from shipway.rules.expressions import Const, Node, parse_expression

__all__ = ["Cell", "Interval", "Test", "parse_cell", "split_row"]

_INTERVAL = re.compile(r"([\[\(\]])\s*([^,\[\]\(\)]+?)\s*\.\.\s*([^,\[\]\(\)]+?)\s*([\]\)\[])")
_OPS = ("<=", ">=", "!=", "==", "<", ">", "=")


@dataclass(frozen=True, slots=True)
class Test:
    """`op` is one of == != < <= > >= applied as `value op expr`; op "null" tests for a missing value."""

    pos: int
    op: str
    expr: Node | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    pos: int
    low: Node
    high: Node
    low_closed: bool
    high_closed: bool


@dataclass(frozen=True, slots=True)
class Cell:
    """One input cell: matches when any test matches (or, negated, when none does)."""

    pos: int
    text: str
    tests: tuple[Test | Interval, ...]  # empty: `-`, matches anything
    negated: bool = False

    @property
    def is_any(self) -> bool:
        return not self.tests and not self.negated


def constant_cell(pos: int, value: Any) -> Cell:
    """A cell written as a YAML number or boolean: equality with that value."""
    if value is None:
        return Cell(pos, "null", (Test(pos, "null"),))
    return Cell(pos, repr(value), (Test(pos, "==", Const(pos, value)),))


def parse_cell(text: str, diags: Diagnostics, spot: Spot, base: int = 0) -> Cell | None:
    """Parse one input cell; `base` is its offset in the spot's text."""
    stripped = text.strip()
    start = base + len(text) - len(text.lstrip())
    if stripped in ("-", ""):
        if not stripped:
            diags.error(spot, "empty cell; write - to match anything", base)
            return None
        return Cell(start, "-", ())
    negated = False
    body, body_base = stripped, start
    match = re.fullmatch(r"not\s*\((.*)\)", stripped, flags=re.S)
    if match:
        negated = True
        body, body_base = match.group(1), start + match.start(1)
    tests: list[Test | Interval] = []
    ok = True
    for part, offset in _split(body, ","):
        test = _parse_test(part, diags, spot, body_base + offset)
        if test is None:
            ok = False
        else:
            tests.append(test)
    if not ok:
        return None
    if negated and not tests:
        diags.error(spot, 'not() needs at least one test inside, e.g. not("x")', start)
        return None
    return Cell(start, stripped, tuple(tests), negated)


def _parse_test(part: str, diags: Diagnostics, spot: Spot, base: int) -> Test | Interval | None:
    stripped = part.strip()
    pos = base + len(part) - len(part.lstrip())
    if not stripped:
        diags.error(spot, "empty test in a list; remove the extra comma", base)
        return None
    if stripped == "-":
        diags.error(spot, "- matches anything, so it cannot be one test of a list; write - alone", pos)
        return None
    if stripped == "null":
        return Test(pos, "null")
    match = _INTERVAL.fullmatch(stripped)
    if match:
        low = parse_expression(match.group(2), diags, spot, pos + match.start(2), bare_words=True)
        high = parse_expression(match.group(3), diags, spot, pos + match.start(3), bare_words=True)
        if low is None or high is None:
            return None
        return Interval(pos, low, high, match.group(1) == "[", match.group(4) == "]")
    if ".." in stripped and stripped[0] in "[(]":
        diags.error(spot, f"bad interval {stripped!r}; write [low..high], (low..high), [low..high) ...", pos)
        return None
    for op in _OPS:
        if stripped.startswith(op):
            rest = stripped[len(op) :]
            expr = parse_expression(rest, diags, spot, pos + len(op), bare_words=True)
            if expr is None:
                return None
            return Test(pos, "==" if op == "=" else op, expr)
    expr = parse_expression(stripped, diags, spot, pos, bare_words=True)
    return None if expr is None else Test(pos, "==", expr)


def split_row(text: str) -> list[tuple[str, int]]:
    """Split `a | b | c` into cells with their offsets; outer pipes are optional."""
    parts = _split(text, "|")
    if parts and not parts[0][0].strip() and text.lstrip().startswith("|"):
        parts = parts[1:]
    if parts and not parts[-1][0].strip() and text.rstrip().endswith("|"):
        parts = parts[:-1]
    return parts


def _split(text: str, separator: str) -> list[tuple[str, int]]:
    """Split at top-level separators, outside quotes and (for commas) brackets."""
    parts: list[tuple[str, int]] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif separator == "," and (match := _INTERVAL.match(text, i)) and not text[start:i].strip():
            i = match.end()
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == separator and (depth == 0 or separator == "|"):
            parts.append((text[start:i], start))
            start = i + 1
        i += 1
    parts.append((text[start:], start))
    return parts
