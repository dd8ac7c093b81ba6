"""Compile a checked spec to one Python function, once.

The source is generated from the validated tree, never from rule text:
fields become our own accessor code, literals are `repr()` constants, and
functions are the helpers in `runtime.py`. Every field a rule set reads is
fetched once at the top of the function; each rule and table runs inside
its own `try`, so a value the schemas could not vouch for (text compared
with a number when there is no schema) records an error instead of raising.
"""

from __future__ import annotations

from typing import Any

from shipway.rules import expressions as ex
from shipway.rules.cells import Cell, Interval, Test
from shipway.rules.decision import Decision
from shipway.rules.model import Row, Rule, Spec, Table
from shipway.rules.reach import TableInfo
from shipway.rules.runtime import HELPERS, compile_pattern
from shipway.rules.types import ANY, Type

__all__ = ["generate"]

_ROOT_ARGS = {"input": "request", "output": "output", "meta": "meta"}
_ROOT_MAPS = {"input": "R", "output": "O", "meta": "M"}
_MATH = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "//": "_floordiv", "%": "_mod", "**": "_pow"}
_CALLS = {
    "lower": "_lower",
    "upper": "_upper",
    "length": "_length",
    "len": "_length",
    "contains": "_contains",
    "startswith": "_startswith",
    "endswith": "_endswith",
    "abs": "_abs",
    "round": "_round",
    "min": "_min",
    "max": "_max",
    "coalesce": "_coalesce",
}
_RESULT = "_D(queue, review, reason, fallback, s, fired, _V, errors)"


def generate(
    spec: Spec, version: str, types: dict[int, Type], tables: dict[str, TableInfo]
) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    """The source of `decide(request, output, meta=None)` and its batch form `decide_batch(requests,
    outputs, metas)`, their namespace, and the top-level fields they read, in the order first read."""
    generator = _Generator(spec, version, types, tables)
    python, namespace = generator.module()
    return python, namespace, tuple(generator.reads)


class _Generator:
    def __init__(self, spec: Spec, version: str, types: dict[int, Type], tables: dict[str, TableInfo]) -> None:
        self.spec = spec
        self.types = types
        self.tables = tables
        self.namespace: dict[str, Any] = {**HELPERS, "_D": Decision, "_V": version}
        self.fields: dict[str, str] = {}  # dotted field -> local variable
        self.reads: dict[str, None] = {}  # top-level input and output fields read, in order
        self.prelude: list[str] = []
        self.roots: set[str] = set()
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def module(self) -> tuple[str, dict[str, Any]]:
        body: list[str] = []
        for step in self.spec.steps:
            body.extend(self.rule(step) if isinstance(step, Rule) else self.table(step))
        d = self.spec.defaults
        head = [
            *(
                f"    {_ROOT_MAPS[root]} = {_ROOT_ARGS[root]} if {_ROOT_ARGS[root]}.__class__ is dict "
                f"else _mapping({_ROOT_ARGS[root]})"
                for root in sorted(self.roots)
            ),
            *("    " + line for line in self.prelude),
            f"    queue, review, reason = {d.queue!r}, {d.review!r}, {d.reason!r}",
            "    fallback, s, fired, errors = False, {}, [], ()",
        ]
        one = ["def decide(request, output, meta=None):", *head, *body, f"    return {_RESULT}"]
        # The batch form: the same body in a loop (one call a batch); a stopping rule ends its row.
        stop = f"return {_RESULT}"
        loop = [
            "def decide_batch(requests, outputs, metas):",
            "    out = []; append = out.append",
            "    for request, output, meta in zip(requests, outputs, metas):",
            *("    " + line.replace(stop, f"append({_RESULT}); continue") for line in [*head, *body]),
            f"        append({_RESULT})",
            "    return out",
        ]
        self.namespace["_reads_meta"] = "meta" in self.roots
        return "\n".join([*one, "", "", *loop, ""]), self.namespace

    # -- steps -----------------------------------------------------------------

    def rule(self, rule: Rule) -> list[str]:
        lines = ["    try:"]
        indent = "        "
        if rule.when is not None and not (isinstance(rule.when, ex.Const) and rule.when.value is True):
            lines.append(f"        if {self.expr(rule.when)}:")
            indent += "    "
        a = rule.actions
        for field, (node, _spot, _key) in a.set.items():
            value = self.expr(node)
            if isinstance(node, ex.Const):
                lines.append(f"{indent}s[{field!r}] = {value}")
            else:
                temp = self.fresh("_v")
                lines += [
                    f"{indent}{temp} = {value}",
                    f"{indent}if {temp} is not None:",
                    f"{indent}    s[{field!r}] = {temp}",
                ]
        if a.queue is not None:
            lines.append(f"{indent}queue = {a.queue!r}")
        if a.review is not None:
            lines.append(f"{indent}review = {a.review!r}")
            lines.append(f"{indent}reason = {a.reason!r}")
        if a.fallback is not None:
            lines.append(f"{indent}fallback = {a.fallback!r}")
        lines.append(f"{indent}fired.append({rule.name!r})")
        if rule.stop:
            lines.append(f"{indent}return {_RESULT}")
        lines += ["    except Exception as _e:", f"        errors = _err(errors, {rule.name!r}, _e)"]
        return lines

    def table(self, table: Table) -> list[str]:
        info = self.tables[table.name]
        lines = ["    try:"]
        columns = []
        for node in table.inputs:
            code = self.expr(node)
            if code.isidentifier() or _is_literal(node):
                columns.append(code)
            else:
                name = self.fresh("_c")
                lines.append(f"        {name} = {code}")
                columns.append(name)
        conditions = [self.row_condition(row, table, columns) for row in info.order]
        if info.first:
            keyword = "if"
            for row, condition in zip(info.order, conditions, strict=True):
                always = condition == "True"
                lines.append("        else:" if always and keyword == "elif" else f"        {keyword} {condition}:")
                lines += self.apply(table, row, "            ")
                keyword = "elif"
                if always:
                    break
        elif table.hit_policy in ("unique", "any"):
            lines += self.checked(table, info.order, conditions)
        else:
            lines += self.collect(table, info.order, conditions)
        lines += ["    except Exception as _e:", f"        errors = _err(errors, {table.name!r}, _e)"]
        return lines

    def apply(self, table: Table, row: Row, indent: str) -> list[str]:
        lines = []
        for output, node in zip(table.outputs, row.outputs, strict=True):
            if node is None:
                continue
            code = self.expr(node)
            target = f"s[{output.field!r}]" if output.field else _DECISION_VAR[output.name]
            if isinstance(node, ex.Const):
                lines.append(f"{indent}{target} = {code}")
            else:
                temp = self.fresh("_v")
                lines += [
                    f"{indent}{temp} = {code}",
                    f"{indent}if {temp} is not None:",
                    f"{indent}    {target} = {temp}",
                ]
        lines.append(f"{indent}fired.append({table.row_name(row)!r})")
        return lines

    def checked(self, table: Table, rows: list[Row], conditions: list[str]) -> list[str]:
        """unique / any, when overlaps could not be ruled out: find every match, then check."""
        lines = ["        _h = []"]
        for index, condition in enumerate(conditions):
            values = ", ".join("None" if n is None else self.expr(n) for n in rows[index].outputs)
            lines.append(f"        if {condition}:")
            lines.append(f"            _h.append(({index}, ({values},)))")
        names = tuple(table.row_name(r) for r in rows)
        numbers = tuple(r.number for r in rows)
        self.namespace[f"_names_{id(table)}"] = names
        self.namespace[f"_numbers_{id(table)}"] = numbers
        conflict = "len(_h) > 1"
        if table.hit_policy == "any":
            conflict += " and any(_x[1] != _h[0][1] for _x in _h)"
        lines += [
            f"        if {conflict}:",
            f"            _bad = ', '.join(str(_numbers_{id(table)}[_x[0]]) for _x in _h)",
            f"            _why = 'rules error: table ' + {table.name!r} + ' (hit_policy {table.hit_policy}): "
            "rows ' + _bad + ' all match'",
            "            review = True",
            "            reason = _why",
            "            errors = (*errors, _why)",
            "        elif _h:",
            "            _k, _o = _h[0]",
        ]
        for i, output in enumerate(table.outputs):
            target = f"s[{output.field!r}]" if output.field else _DECISION_VAR[output.name]
            lines += [f"            if _o[{i}] is not None:", f"                {target} = _o[{i}]"]
        lines.append(f"            fired.append(_names_{id(table)}[_k])")
        return lines

    def collect(self, table: Table, rows: list[Row], conditions: list[str]) -> list[str]:
        lists = [self.fresh("_l") for _ in table.outputs]
        lines = [f"        {name} = []" for name in lists]
        for row, condition in zip(rows, conditions, strict=True):
            lines.append(f"        if {condition}:")
            for name, node in zip(lists, row.outputs, strict=True):
                if node is None:
                    continue
                if isinstance(node, ex.Const):
                    lines.append(f"            {name}.append({self.expr(node)})")
                else:
                    temp = self.fresh("_v")
                    lines += [f"            {temp} = {self.expr(node)}", f"            if {temp} is not None:"]
                    lines.append(f"                {name}.append({temp})")
            lines.append(f"            fired.append({table.row_name(row)!r})")
        for name, output in zip(lists, table.outputs, strict=True):
            target = f"s[{output.field!r}]"
            if table.aggregation == "count":
                lines.append(f"        {target} = len({name})")
            elif table.aggregation in ("sum", "min", "max"):
                lines += [f"        if {name}:", f"            {target} = {table.aggregation}({name})"]
            else:
                lines.append(f"        {target} = {name}")
        return lines

    # -- conditions of table rows ----------------------------------------------

    def row_condition(self, row: Row, table: Table, columns: list[str]) -> str:
        parts = []
        for cell, column, node in zip(row.cells, columns, table.inputs, strict=True):
            if cell.is_any:
                continue
            parts.append(self.cell(cell, column, node))
        return " and ".join(parts) if parts else "True"

    def cell(self, cell: Cell, value: str, node: ex.Node) -> str:
        alternatives: list[str] = []
        equal: list[Any] = []
        for test in cell.tests:
            if isinstance(test, Test) and test.op == "==" and isinstance(test.expr, ex.Const):
                if test.expr.value is not None:
                    equal.append(test.expr.value)
                continue
            alternatives.append(self.test(test, value, node))
        if equal:
            alternatives.insert(0, self.membership(value, equal, node))
        code = " or ".join(alternatives) if alternatives else "False"
        if cell.negated:
            return f"(not ({code}))"
        return f"({code})" if len(alternatives) > 1 else code

    def membership(self, value: str, constants: list[Any], node: ex.Node) -> str:
        if len(constants) == 1:
            return f"{value} == {constants[0]!r}"
        return f"{value} in {self.container(constants, node)}"

    def test(self, test: Test | Interval, value: str, node: ex.Node) -> str:
        if isinstance(test, Interval):
            low, high = self.expr(test.low), self.expr(test.high)
            lo, hi = ("<=" if test.low_closed else "<"), ("<=" if test.high_closed else "<")
            if _is_literal(test.low) and _is_literal(test.high) and value.isidentifier():
                return f"({value} is not None and {low} {lo} {value} {hi} {high})"
            return self.comparison([lo, hi], [(low, test.low), (value, node), (high, test.high)])
        if test.op == "null":
            return f"{value} is None"
        assert test.expr is not None  # only null tests have no expression
        return self.comparison([test.op], [(value, node), (self.expr(test.expr), test.expr)])

    # -- expressions -----------------------------------------------------------

    def expr(self, node: ex.Node) -> str:
        if isinstance(node, ex.Const):
            return repr(node.value)
        if isinstance(node, ex.Field):
            return self.field(node)
        if isinstance(node, ex.ListExpr):
            return "(" + "".join(f"{self.expr(i)}, " for i in node.items) + ")"
        if isinstance(node, ex.Compare):
            return self.compare(node)
        if isinstance(node, ex.BoolOp):
            return "(" + f" {node.op} ".join(self.expr(v) for v in node.values) + ")"
        if isinstance(node, ex.Not):
            return f"(not {self.expr(node.operand)})"
        if isinstance(node, ex.Math):
            return self.math(node)
        if isinstance(node, ex.Neg):
            return f"_neg({self.expr(node.operand)})"
        if isinstance(node, ex.Call):
            return self.call(node)
        if isinstance(node, ex.IfElse):
            return f"({self.expr(node.body)} if {self.expr(node.test)} else {self.expr(node.orelse)})"
        raise TypeError(f"cannot compile {node!r}")  # pragma: no cover - the parser builds no other nodes

    def field(self, node: ex.Field) -> str:
        self.roots.add(node.root)
        if not node.steps:
            return _ROOT_ARGS[node.root]
        if node.dynamic:
            steps = "".join(f"{self.expr(s) if isinstance(s, ex.Node) else repr(s)}, " for s in node.steps)
            return f"_walk({_ROOT_MAPS[node.root]}, ({steps}))"
        return self.path(node.root, node.steps)

    def path(self, root: str, steps: tuple[Any, ...]) -> str:
        if root in ("input", "output"):
            self.reads[f"{root}.{steps[0]}"] = None
        key = root + "".join(f"[{s!r}]" for s in steps)
        if key in self.fields:
            return self.fields[key]
        name = self.fresh("f")
        if len(steps) == 1:
            self.prelude.append(f"{name} = {_ROOT_MAPS[root]}.get({steps[0]!r})")
        else:
            parent = self.path(root, steps[:-1])
            self.prelude += [
                "try:",
                f"    {name} = {parent}[{steps[-1]!r}]",
                "except Exception:",
                f"    {name} = _walk({parent}, ({steps[-1]!r},))",
            ]
        self.fields[key] = name
        return name

    def compare(self, node: ex.Compare) -> str:
        codes = [self.expr(o) for o in node.operands]
        # low <= f < high with literal bounds and f a local: one Python chain, one guard.
        if len(node.ops) > 1 and all(op in ("<", "<=", ">", ">=") for op in node.ops):
            names = [c for c, o in zip(codes, node.operands, strict=True) if not _is_literal(o)]
            if all(n.isidentifier() for n in names):
                chain = codes[0] + "".join(f" {op} {c}" for op, c in zip(node.ops, codes[1:], strict=True))
                guard = " and ".join(f"{n} is not None" for n in dict.fromkeys(names))
                return f"({guard} and {chain})" if guard else f"({chain})"
        return self.comparison(list(node.ops), list(zip(codes, node.operands, strict=True)))

    def comparison(self, ops: list[str], items: list[tuple[str, ex.Node | None]]) -> str:
        """`a op b op c` where a comparison with a missing value is false; each operand runs once.

        `items` are (code, node) pairs; node None means the code is a local known by the caller.
        """
        atoms: list[str] = []
        pending: dict[int, str] = {}  # operand -> its walrus, emitted where first used
        for i, (code, node) in enumerate(items):
            if isinstance(node, ex.ListExpr) and all(isinstance(x, ex.Const) for x in node.items) and i > 0:
                left = items[i - 1][1]
                atoms.append(self.container([x.value for x in node.items if isinstance(x, ex.Const)], left))
            elif code.isidentifier() or _is_literal(node):
                atoms.append(code)
            else:
                temp = self.fresh("_t")
                atoms.append(temp)
                pending[i] = f"({temp} := {code})"

        def use(i: int) -> str:
            return pending.pop(i) if i in pending else atoms[i]

        def literal(i: int) -> bool:
            node = items[i][1]
            return _is_literal(node) or (isinstance(node, ex.ListExpr) and atoms[i][0] in "({")

        parts: list[str] = []
        guarded: set[int] = set()
        for i, op in enumerate(ops):
            nodes = (items[i][1], items[i + 1][1])
            if any(isinstance(n, ex.Const) and n.value is None for n in nodes):
                return "False"
            if op == "==" and (literal(i) or literal(i + 1)):
                needs: tuple[int, ...] = ()  # a missing value never equals a literal
            elif op in ("in", "not in"):
                needs = (i,) if op == "not in" and literal(i + 1) else ()
            else:
                needs = (i, i + 1)
            for j in needs:
                if not literal(j) and j not in guarded:
                    parts.append(f"{use(j)} is not None")
                    guarded.add(j)
            a, b = use(i), use(i + 1)
            if op in ("in", "not in") and not literal(i + 1):
                parts.append(f"{'_in' if op == 'in' else '_notin'}({a}, {b})")
            else:
                parts.append(f"{a} {op} {b}")
        return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"

    def container(self, values: list[Any], left: ex.Node | None) -> str:
        present = [v for v in values if v is not None]
        column = self.types.get(id(left), ANY) if left is not None else ANY
        scalar = column.known is not None and not column.known & {"array", "object"}
        items = ", ".join(repr(v) for v in present)
        if scalar and present:
            return f"{{{items}}}"  # compiled to a frozenset constant
        return f"({items}{',' if present else ''})"

    def simple(self, code: str, node: ex.Node, prefix: list[str]) -> str:
        """`code` if it is cheap to repeat (a local or a literal), else a walrus temporary."""
        if code.isidentifier() or _is_literal(node):
            return code
        temp = self.fresh("_t")
        prefix.append(f"({temp} := {code})")
        return temp

    def math(self, node: ex.Math) -> str:
        left, right = self.expr(node.left), self.expr(node.right)
        lt = self.types.get(id(node.left), ANY)
        rt = self.types.get(id(node.right), ANY)
        if not (lt.only("number") and rt.only("number") and node.op in ("+", "-", "*")):
            return f"{_MATH[node.op]}({left}, {right})"
        guards = []
        operands = []
        for code, operand in ((left, node.left), (right, node.right)):
            if _is_literal(operand):
                operands.append(code)
            elif code.isidentifier():
                guards.append(f"{code} is None")
                operands.append(code)
            else:
                temp = self.fresh("_t")
                guards.append(f"({temp} := {code}) is None")
                operands.append(temp)
        result = f"{operands[0]} {node.op} {operands[1]}"
        return f"(None if {' or '.join(guards)} else {result})" if guards else f"({result})"

    def call(self, node: ex.Call) -> str:
        args = [self.expr(a) for a in node.args]
        if node.name == "missing":
            return f"({args[0]} is None)"
        if node.name == "present":
            return f"({args[0]} is not None)"
        if node.name == "matches":
            pattern = compile_pattern(str(node.args[1].value) if isinstance(node.args[1], ex.Const) else "")[0]
            name = self.fresh("_re")
            self.namespace[name] = pattern
            return f"_matches({args[0]}, {name})"
        return f"{_CALLS[node.name]}({', '.join(args)})"


_DECISION_VAR = {"queue": "queue", "review": "review", "reason": "reason", "fallback": "fallback"}


def _is_literal(node: ex.Node | None) -> bool:
    return isinstance(node, ex.Const)
