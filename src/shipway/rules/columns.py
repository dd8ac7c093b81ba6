"""A second evaluator of a rule set: its expression tree over columns, for backtests at scale and
batch scoring (`LiveRules.decide_columns`).

`RuleSet.decide` (the code codegen.py generates) decides one prediction at a time, about a
microsecond a rule set; a backtest of ten million logged predictions needs it over columns.
`ColumnRules` reads the same checked tree (loader.py) and evaluates it over the Parquet
export's typed columns (`input.<field>`, `output.<field>`, docs/analysis.md) with numpy and
pyarrow.compute, one operation per node for a whole batch. It is not a second meaning of the
rules: it answers only where it is sure to give what `decide` gives, and says where it is not.

- Rule sets it does not take (`ColumnRules.of` returns None, with the reason in `why_not`):
  decision tables, `set` values that are not constants, fields below the top level, functions
  and operators outside the list below, and comparisons between kinds that `decide` would
  refuse or answer by Python's mixed-type rules. The caller runs the row path for them.
- Rows it is not sure of (`ColumnDecisions.sure` False): a field the rules read is null in its typed
  column (absent, null, or of another JSON type than the schema's, which `decide` reads
  differently), an integer beyond 2**53 (float64 would round it), a string outside ASCII under
  lower() or upper() (Python's case mapping differs from Arrow's there), a divisor of zero.
  The caller decides those rows with `decide`.

What it evaluates: constants, `input.f`, `output.f`, `meta.time`, `meta.canary`, comparisons
(chains too) and `in` / `not in` a list of constants, `and`, `or`, `not`, truthiness, `+ - * /`,
unary minus, abs(), length() / len(), lower(), upper(), contains(), startswith(), endswith(),
missing(), present(). tests/rules/test_rules_columns.py checks it against `decide` on every
rule kind with generated expressions and data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from shipway.rules import expressions as ex
from shipway.rules.diagnostics import Diagnostics
from shipway.rules.loader import parse_spec
from shipway.rules.model import Rule
from shipway.rules.ruleset import RuleSet

__all__ = ["ColumnDecisions", "ColumnRules", "NotColumnar", "code_of", "why_not"]

EXACT = 2.0**53  # integers up to this are exact in float64


class NotColumnar(Exception):
    """The rules, or a batch's columns, have no column form here: the row path decides."""


@dataclass(slots=True)
class ColumnDecisions:
    """The decisions of one rule set over a batch, as columns (numpy arrays, one entry per row)."""

    queue: Any  # int codes into the caller's `queues` list
    review: Any  # bool
    fallback: Any  # bool
    set: dict[str, Any]  # field -> int codes into `constants`, -1 where the rules set nothing
    sure: Any  # bool: False where the row path must decide
    # What `Decision.review_reason` and `fired` hold, for a caller that writes whole decisions
    # (batch scoring): codes into `reasons`, and each rule's name with where it fired, in order.
    reason: Any = None
    reasons: tuple[Any, ...] = ()
    fired: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def empty(cls, n: int, queues: list[Any]) -> ColumnDecisions:
        """What no rules decide: the empty decision on every row."""
        import numpy as np

        none = np.zeros(n, dtype=bool)
        return cls(np.full(n, code_of(queues, None), dtype=np.int32), none, none, {}, ~none)


def why_not(ruleset: RuleSet) -> str | None:
    """Why `ruleset` has no column form (None when it has one)."""
    try:
        ColumnRules(ruleset)
    except NotColumnar as err:
        return str(err)
    return None


class ColumnRules:
    """One rule set's steps, ready to decide over columns (see the module's docstring)."""

    def __init__(self, ruleset: RuleSet) -> None:
        spec = parse_spec(ruleset.source, Diagnostics(ruleset.filename))
        if spec is None:  # pragma: no cover - a RuleSet's source parsed when it was loaded
            raise NotColumnar("its source does not parse")
        self.steps: list[Rule] = []
        for step in spec.steps:
            if not isinstance(step, Rule):
                raise NotColumnar(f"decision table {step.name!r}")
            for name, (node, _, _) in step.actions.set.items():
                if not isinstance(node, ex.Const):
                    raise NotColumnar(f"rule {step.name!r} sets {name} to an expression")
            self.steps.append(step)
        self.default_queue = spec.defaults.queue
        self.default_review = bool(spec.defaults.review)
        self.default_reason = spec.defaults.reason
        self.columns: set[str] = set()
        for step in self.steps:
            if step.when is not None:
                _check(step.when, self.columns)

    @classmethod
    def of(cls, ruleset: RuleSet | None) -> ColumnRules | None:
        """The column form of `ruleset`, None when it has none (or there are no rules)."""
        return None if ruleset is None else _column_form(ruleset.source, ruleset.filename)

    def decide(self, columns: dict[str, Any], n: int, queues: list[Any], constants: list[Any]) -> ColumnDecisions:
        """Decide `n` rows. `columns` maps the export's column names (`output.intent`, and `ts`
        for meta.time, `meta.canary` a bool array) to Arrow arrays or numpy arrays. Queue names
        and set values are added to `queues` and `constants`, which the caller shares between
        rule sets so that codes compare."""
        import numpy as np

        ev = _Evaluator(columns, n)
        for name in self.columns:
            ev.field(name)  # every field read: its nulls and big integers mark rows unsure
        queue = np.full(n, code_of(queues, self.default_queue), dtype=np.int32)
        review = np.full(n, self.default_review)
        reasons: list[Any] = [self.default_reason]
        reason = np.zeros(n, dtype=np.int32)
        fallback = np.zeros(n, dtype=bool)
        sets: dict[str, Any] = {}
        fired: list[tuple[str, Any]] = []
        stopped = np.zeros(n, dtype=bool)
        for rule in self.steps:
            when = rule.when
            always = when is None or (isinstance(when, ex.Const) and when.value is True)
            fire = ~stopped if always else ev.truth(when) & ~stopped  # type: ignore[arg-type]
            a = rule.actions
            for name, (node, _, _) in a.set.items():
                codes = sets.setdefault(name, np.full(n, -1, dtype=np.int32))
                codes[fire] = code_of(constants, node.value)  # type: ignore[attr-defined]
            if a.queue is not None:
                queue[fire] = code_of(queues, a.queue)
            if a.review is not None:
                review[fire] = a.review
                reason[fire] = code_of(reasons, a.reason)  # decide sets the reason with review
            if a.fallback is not None:
                fallback[fire] = a.fallback
            fired.append((rule.name, fire))
            if rule.stop:
                stopped |= fire
        return ColumnDecisions(queue, review, fallback, sets, ev.sure, reason, tuple(reasons), tuple(fired))


@functools.lru_cache(maxsize=64)
def _column_form(source: str, filename: str) -> ColumnRules | None:
    """Parsed once per rules text: a backtest asks for every batch."""
    ruleset = RuleSet.__new__(RuleSet)
    ruleset.source, ruleset.filename = source, filename
    try:
        return ColumnRules(ruleset)
    except NotColumnar:
        return None


def code_of(names: list[Any], value: Any) -> int:
    """The index of `value` in `names` (same type and equal), added at the end when absent."""
    for i, known in enumerate(names):
        if type(known) is type(value) and known == value:
            return i
    names.append(value)
    return len(names) - 1


def column_of(field: ex.Field) -> str:
    """The export column of a field, or NotColumnar."""
    if field.dynamic or len(field.steps) > 1 or (field.steps and not isinstance(field.steps[0], str)):
        raise NotColumnar(f"field {field.dotted()} is not a top-level field")
    if field.root == "meta":
        if field.steps == ("time",):
            return "ts"
        if field.steps == ("canary",):
            return "meta.canary"
        raise NotColumnar(f"field {field.dotted()}")
    return field.root if not field.steps else f"{field.root}.{field.steps[0]}"


_CALLS = {"missing", "present", "abs", "length", "len", "lower", "upper", "contains", "startswith", "endswith"}
_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")


def _check(node: ex.Node, columns: set[str]) -> None:
    """Raise NotColumnar for a node outside the evaluated subset; collect the columns read."""
    if isinstance(node, ex.Field):
        columns.add(column_of(node))
    elif isinstance(node, ex.Math):
        if node.op not in ("+", "-", "*", "/"):
            raise NotColumnar(f"operator {node.op}")
        _check(node.left, columns)
        _check(node.right, columns)
    elif isinstance(node, ex.Call):
        if node.name not in _CALLS:
            raise NotColumnar(f"function {node.name}()")
        for arg in node.args:
            _check(arg, columns)
    elif isinstance(node, ex.Compare):
        for op, right in zip(node.ops, node.operands[1:], strict=True):
            if op in ("in", "not in") and not (
                isinstance(right, ex.ListExpr) and all(isinstance(i, ex.Const) for i in right.items)
            ):
                raise NotColumnar("`in` something other than a list of constants")
        for operand in node.operands:
            if not isinstance(operand, ex.ListExpr):
                _check(operand, columns)
    elif isinstance(node, (ex.BoolOp, ex.Not, ex.Neg)):
        for inner in node.values if isinstance(node, ex.BoolOp) else (node.operand,):
            _check(inner, columns)
    elif not isinstance(node, ex.Const):
        raise NotColumnar(type(node).__name__)


class _Evaluator:
    """Evaluates nodes over one batch. A value is (kind, data): "num" float64 array, "str" Arrow
    string array, "bool" bool array, or "const" with a Python value."""

    def __init__(self, columns: dict[str, Any], n: int) -> None:
        import numpy as np

        self.np = np
        self.columns = columns
        self.n = n
        self.sure = np.ones(n, dtype=bool)
        self.cache: dict[str, tuple[str, Any]] = {}

    def unsure(self, where: Any) -> None:
        self.sure &= ~self.np.asarray(where, dtype=bool)

    def field(self, name: str) -> tuple[str, Any]:
        if name in self.cache:
            return self.cache[name]
        import pyarrow as pa

        np = self.np
        data = self.columns.get(name)
        if data is None:
            raise NotColumnar(f"the log has no typed column {name}")
        if isinstance(data, np.ndarray):
            value = ("bool", data) if data.dtype == bool else ("num", data.astype(np.float64, copy=False))
        else:
            if isinstance(data, pa.ChunkedArray):
                data = data.combine_chunks()
            self.unsure(data.is_null().to_numpy(zero_copy_only=False))
            t = data.type
            if pa.types.is_string(t) or pa.types.is_large_string(t):
                value = ("str", data)
            elif pa.types.is_boolean(t):
                value = ("bool", data.fill_null(False).to_numpy(zero_copy_only=False))
            elif pa.types.is_integer(t) or pa.types.is_floating(t):
                numbers = data.fill_null(0).to_numpy(zero_copy_only=False)
                if pa.types.is_integer(t):
                    self.unsure(np.abs(numbers) > 2**53)  # float64 would round it
                value = ("num", numbers.astype(np.float64))
            else:
                raise NotColumnar(f"column {name} of type {t}")
        self.cache[name] = value
        return value

    def value(self, node: ex.Node) -> tuple[str, Any]:
        np = self.np
        if isinstance(node, ex.Const):
            return ("const", node.value)
        if isinstance(node, ex.Field):
            return self.field(column_of(node))
        if isinstance(node, ex.Neg):
            return ("num", -self.number(node.operand))
        if isinstance(node, ex.Math):
            left, right = self.number(node.left), self.number(node.right)
            with np.errstate(all="ignore"):
                if node.op == "/":
                    zero = np.asarray(right == 0)
                    self.unsure(np.broadcast_to(zero, (self.n,)))  # decide answers None there
                    result = left / np.where(zero, 1.0, right)
                else:
                    result = {"+": np.add, "-": np.subtract, "*": np.multiply}[node.op](left, right)
            self.unsure(np.broadcast_to(np.abs(result) >= EXACT, (self.n,)))  # int arithmetic is exact in Python
            return ("num", np.broadcast_to(result, (self.n,)))
        if isinstance(node, ex.Call) and node.name in ("abs", "length", "len", "lower", "upper"):
            import pyarrow.compute as pc

            if node.name == "abs":
                return ("num", np.abs(self.number(node.args[0])))
            text = self.text(node.args[0])
            if node.name in ("length", "len"):
                return ("num", pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.float64))
            self.unsure(~pc.string_is_ascii(text).fill_null(True).to_numpy(zero_copy_only=False))
            return ("str", pc.utf8_lower(text) if node.name == "lower" else pc.utf8_upper(text))
        if isinstance(node, ex.BoolOp):
            raise NotColumnar("`and` / `or` as a value (it gives one of its operands, not a truth)")
        return ("bool", self.truth(node))

    def number(self, node: ex.Node) -> Any:
        kind, data = self.value(node)
        if kind == "num":
            return data
        if kind == "const" and type(data) in (int, float):
            return float(data)
        raise NotColumnar(f"arithmetic on a {kind}")

    def text(self, node: ex.Node) -> Any:
        kind, data = self.value(node)
        if kind != "str":
            raise NotColumnar(f"a text function of a {kind}")
        return data

    def truth(self, node: ex.Node) -> Any:
        """Where the node is truthy, as `if node:` reads it in `decide`."""
        np = self.np
        import pyarrow.compute as pc

        if isinstance(node, ex.BoolOp):
            parts = [self.truth(v) for v in node.values]
            out = parts[0].copy()
            for p in parts[1:]:
                out = (out & p) if node.op == "and" else (out | p)
            return out
        if isinstance(node, ex.Not):
            return ~self.truth(node.operand)
        if isinstance(node, ex.Compare):
            return self.compare(node)
        if isinstance(node, ex.Call) and node.name in ("missing", "present"):
            self.value(node.args[0])  # rows without it are unsure: the rest have it
            return np.full(self.n, node.name == "present")
        if isinstance(node, ex.Call) and node.name in ("contains", "startswith", "endswith"):
            text, pattern = self.value(node.args[0]), self.value(node.args[1])
            if text[0] != "str" or pattern[0] != "const" or type(pattern[1]) is not str:
                raise NotColumnar(f"{node.name}() of other than a text field and a text")
            fn = {"contains": pc.match_substring, "startswith": pc.starts_with, "endswith": pc.ends_with}[node.name]
            return _bools(fn(text[1], pattern=pattern[1]))
        kind, data = self.value(node)
        if kind == "const":
            return np.full(self.n, bool(data))
        if kind == "num":
            return data != 0
        if kind == "str":
            return _bools(pc.greater(pc.utf8_length(data), 0))
        return data

    def compare(self, node: ex.Compare) -> Any:
        np = self.np
        out = np.ones(self.n, dtype=bool)
        values = [("list", o) if isinstance(o, ex.ListExpr) else self.value(o) for o in node.operands]
        if any(v == ("const", None) for v in values):
            return np.zeros(self.n, dtype=bool)  # decide: a comparison with null is false
        for op, a, b in zip(node.ops, values[:-1], values[1:], strict=True):
            out &= self.pair(op, a, b)
        return out

    def pair(self, op: str, a: tuple[str, Any], b: tuple[str, Any]) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        np = self.np
        if op in ("in", "not in"):
            members = [i.value for i in b[1].items]
            if a[0] == "num" and all(type(m) in (int, float) for m in members):
                found = np.isin(a[1], np.array(members, dtype=np.float64))
            elif a[0] == "str" and all(type(m) is str for m in members):
                found = _bools(pc.is_in(a[1], value_set=pa.array(members, pa.string())))
            elif a[0] == "bool" and all(type(m) is bool for m in members):
                found = np.isin(a[1], np.array(members, dtype=bool))
            else:
                raise NotColumnar(f"`{op}` a list of other kinds than its left side")
            return found if op == "in" else ~found
        kinds = {a[0], b[0]} - {"const"}
        consts = [v for k, v in (a, b) if k == "const"]
        if not kinds:
            raise NotColumnar("a comparison of constants")
        (kind,) = kinds if len(kinds) == 1 else (None,)
        want = {"num": (int, float), "str": (str,), "bool": (bool,)}.get(kind or "", ())
        if kind is None or any(type(c) not in want for c in consts) or (kind == "bool" and op not in ("==", "!=")):
            raise NotColumnar(f"`{op}` between values of other kinds")
        if kind == "str":
            fn = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal}.get(op)
            fn = fn or {">": pc.greater, ">=": pc.greater_equal}[op]
            left = a[1] if a[0] == "str" else pa.scalar(a[1], pa.string())
            right = b[1] if b[0] == "str" else pa.scalar(b[1], pa.string())
            return _bools(fn(left, right))
        left, right = a[1], b[1]
        fn = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal}.get(op)
        fn = fn or {">": np.greater, ">=": np.greater_equal}[op]
        return np.broadcast_to(fn(left, right), (self.n,))


def _bools(array: Any) -> Any:
    """An Arrow boolean result as a numpy array (null, on rows already unsure, as False)."""
    return array.fill_null(False).to_numpy(zero_copy_only=False)
