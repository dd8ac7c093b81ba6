"""Read a rules file: YAML nodes (with their positions) into a `Spec`, or diagnostics.

The YAML is composed, not loaded, so that every key, value and expression
keeps its line and column for the diagnostics.
"""

from __future__ import annotations

import re
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from shipway.common.positions import YamlSyntaxError, compose
from shipway.common.suggest import did_you_mean
from shipway.rules import expressions as ex
from shipway.rules.cells import Cell, constant_cell, parse_cell, split_row
from shipway.rules.diagnostics import Diagnostics, Spot
from shipway.rules.model import (
    AGGREGATIONS,
    DECISION_OUTPUTS,
    HIT_POLICIES,
    HIT_POLICY_ALIASES,
    Actions,
    Defaults,
    Output,
    Row,
    Rule,
    Spec,
    Table,
)

__all__ = ["parse_spec"]

STR = "tag:yaml.org,2002:str"
BOOL = "tag:yaml.org,2002:bool"
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_spec(text: str, diags: Diagnostics) -> Spec | None:
    """The file's content as a Spec; None when it is not even the right shape."""
    try:
        root = compose(text, diags.file)
    except YamlSyntaxError as err:
        found = err.diagnostic
        diags.add("error", found.line or 1, found.column or 1, found.message)
        return None
    return _Reader(text, diags).spec(root)


class _Reader:
    def __init__(self, text: str, diags: Diagnostics) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.diags = diags
        self.names: dict[str, Spot] = {}

    # -- positions -------------------------------------------------------------

    def spot(self, node: Node) -> Spot:
        start, end = node.start_mark, node.end_mark
        if isinstance(node, ScalarNode):
            one_line = start.line == end.line
            if node.style is None and one_line:
                return Spot(((start.line, start.column),), True, node.value)
            if node.style in ('"', "'") and one_line:
                raw = self.text[start.index : end.index]
                if raw[1:-1] == node.value:
                    return Spot(((start.line, start.column + 1),), True, node.value)
                return Spot.quoted(start.line, start.column, raw, node.value)
            if node.style == "|":
                indent = next(
                    (len(ln) - len(ln.lstrip(" ")) for ln in self.lines[start.line + 1 :] if ln.strip()),
                    start.column,
                )
                rows = node.value.split("\n")
                return Spot(tuple((start.line + 1 + i, indent) for i in range(len(rows))), True, node.value)
        elif start.line == end.line:  # a flow list or map used as text, e.g. a [0.2..0.8] cell
            return Spot(((start.line, start.column),), True, self.text[start.index : end.index])
        return Spot.at(start.line, start.column)

    def raw(self, node: Node) -> str:
        return node.value if isinstance(node, ScalarNode) else self.text[node.start_mark.index : node.end_mark.index]

    # -- shapes ----------------------------------------------------------------

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...]) -> dict[str, tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            self.diags.error(self.spot(node), f"{what} must be a mapping with keys {', '.join(allowed)}")
            return None
        out: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else self.raw(key)
            if name in out:
                self.diags.error(self.spot(key), f"{what}: key {name!r} is given twice")
            elif name not in allowed:
                self.diags.error(
                    self.spot(key),
                    f"{what}: unknown key {name!r}{did_you_mean(name, allowed, aside=True)}; the keys are {', '.join(allowed)}",
                )
            else:
                out[name] = (key, value)
        return out

    def string(self, node: Node, what: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == STR and node.value.strip():
            return str(node.value)
        self.diags.error(self.spot(node), f"{what} must be a name or text, not {self.raw(node)!r}")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            return bool(SafeConstructor().construct_object(node))
        self.diags.error(self.spot(node), f"{what} must be true or false, not {self.raw(node)!r}")
        return None

    def expression(self, node: Node, what: str, *, bare_words: bool = False) -> ex.Node | None:
        if isinstance(node, ScalarNode) and node.tag == STR:
            return ex.parse_expression(node.value, self.diags, self.spot(node), bare_words=bare_words)
        if isinstance(node, ScalarNode):
            value = SafeConstructor().construct_object(node)
            if value is None or isinstance(value, (bool, int, float)):
                return ex.Const(0, value)
        self.diags.error(self.spot(node), f"{what} must be an expression written as text, not {self.raw(node)!r}")
        return None

    def name(self, node: Node | None, default: str, spot: Spot) -> str:
        name = default
        if node is not None:
            name = self.string(node, "name") or default
            spot = self.spot(node)
        if name in self.names:
            self.diags.error(spot, f"the name {name!r} is used twice; rule and table names must be unique")
        self.names[name] = spot
        return name

    # -- the file --------------------------------------------------------------

    def spec(self, root: Node | None) -> Spec | None:
        if root is None:
            self.diags.error(None, "the rules file is empty; it needs a `rules:` list (see docs/rules.md)")
            return None
        top = self.mapping(root, "the rules file", ("version", "description", "default", "rules"))
        if top is None:
            return None
        version = None
        if "version" in top:
            node = top["version"][1]
            if isinstance(node, ScalarNode) and node.value.strip():
                version = node.value.strip()
            else:
                self.diags.error(self.spot(node), "version must be a label such as 2024-06-01 or v3")
        defaults = self.defaults(top["default"][1]) if "default" in top else Defaults()
        steps: list[Rule | Table] = []
        if "rules" not in top:
            self.diags.error(self.spot(root), "the rules file has no `rules:` list")
        elif not isinstance(top["rules"][1], SequenceNode):
            self.diags.error(self.spot(top["rules"][1]), "`rules` must be a list of rules and tables")
        else:
            for index, item in enumerate(top["rules"][1].value, start=1):
                is_table = isinstance(item, MappingNode) and any(
                    isinstance(k, ScalarNode) and k.value == "table" for k, _ in item.value
                )
                step = self.table(item, index) if is_table else self.rule(item, index)
                if step is not None:
                    steps.append(step)
        return Spec(version, defaults, steps)

    def defaults(self, node: Node) -> Defaults:
        keys = self.mapping(node, "default", ("queue", "review", "reason", "answer"))
        out = Defaults()
        if not keys:
            return out
        if "queue" in keys:
            out.queue = self.string(keys["queue"][1], "default queue")
        if "review" in keys:
            out.review = bool(self.boolean(keys["review"][1], "default review"))
        if "reason" in keys:
            out.reason = self.string(keys["reason"][1], "default reason")
        if "answer" in keys:
            out.answer = SafeConstructor().construct_document(keys["answer"][1])
            out.answer_spot = self.spot(keys["answer"][1])
            if not isinstance(out.answer, dict):
                self.diags.error(out.answer_spot, "default answer must be a mapping of output fields to values")
        return out

    def rule(self, node: Node, index: int) -> Rule | None:
        keys = self.mapping(node, f"rule {index}", ("name", "description", "when", "then", "stop"))
        if keys is None:
            return None
        spot = self.spot(node)
        name = self.name(keys["name"][1] if "name" in keys else None, f"rule#{index}", spot)
        when = when_spot = None
        if "when" in keys:
            when_spot = self.spot(keys["when"][1])
            when = self.expression(keys["when"][1], f"`when` of rule {name!r}")
        stop = bool(self.boolean(keys["stop"][1], "stop")) if "stop" in keys else False
        if "then" not in keys:
            self.diags.error(spot, f"rule {name!r} has no `then:`; say what it does, e.g. then: {{queue: urgent}}")
            return None
        actions = self.actions(keys["then"][1], name)
        return Rule(name, when, actions, stop, spot, when_spot)

    def actions(self, node: Node, name: str) -> Actions:
        keys = self.mapping(node, f"`then` of rule {name!r}", ("queue", "set", "review", "reason", "fallback"))
        out = Actions()
        if keys is None:
            return out
        if not keys:
            self.diags.error(self.spot(node), f"rule {name!r} does nothing; give queue, set, review or fallback")
        if "queue" in keys:
            out.queue = self.string(keys["queue"][1], "queue")
        if "review" in keys:
            out.review = self.boolean(keys["review"][1], "review")
        if "reason" in keys:
            out.reason = self.string(keys["reason"][1], "reason")
            if out.review is not True:
                self.diags.error(self.spot(keys["reason"][0]), "reason goes with review: true")
        if "fallback" in keys:
            out.fallback = self.boolean(keys["fallback"][1], "fallback")
        if "set" in keys:
            set_node = keys["set"][1]
            if not isinstance(set_node, MappingNode):
                self.diags.error(self.spot(set_node), "set must map output fields to expressions: {field: expr}")
                return out
            for key, value in set_node.value:
                field = key.value if isinstance(key, ScalarNode) else self.raw(key)
                if not FIELD_NAME.fullmatch(field) or field.startswith("_"):
                    self.diags.error(self.spot(key), f"set: {field!r} is not a field name")
                    continue
                expr = self.expression(value, f"set {field}", bare_words=True)
                if expr is not None:
                    out.set[field] = (expr, self.spot(value), self.spot(key))
        return out

    def table(self, node: Node, index: int) -> Table | None:
        outer = self.mapping(node, f"rules item {index}", ("table",))
        if not outer:
            return None
        keys = self.mapping(
            outer["table"][1],
            f"table {index}",
            ("name", "description", "hit_policy", "aggregation", "inputs", "outputs", "rows"),
        )
        if keys is None:
            return None
        spot = self.spot(outer["table"][0])
        name = self.name(keys["name"][1] if "name" in keys else None, f"table#{index}", spot)
        policy, aggregation = self.hit_policy(keys, name)
        inputs: list[ex.Node] = []
        input_spots: list[Spot] = []
        for item in self.sequence(keys, "inputs", name):
            expr = self.expression(item, f"an input of table {name!r}")
            if expr is not None:
                inputs.append(expr)
                input_spots.append(self.spot(item))
        outputs = [out for item in self.sequence(keys, "outputs", name) if (out := self.output(item, name))]
        if "outputs" in keys and not outputs:
            self.diags.error(self.spot(keys["outputs"][1]), f"table {name!r} needs at least one output")
        table = Table(name, policy, aggregation, inputs, input_spots, outputs, [], spot)
        if len(inputs) != len(self.sequence(keys, "inputs", name)) or len(outputs) != len(
            self.sequence(keys, "outputs", name)
        ):
            return None  # the columns are wrong; row errors would only repeat that
        if "rows" in keys:
            table.rows = self.rows(keys["rows"][1], table)
        else:
            self.diags.error(spot, f"table {name!r} has no rows")
        return table

    def sequence(self, keys: dict[str, tuple[Node, Node]], key: str, name: str) -> list[Node]:
        if key not in keys:
            if key == "outputs":
                self.diags.error(None, f"table {name!r} has no `outputs:`")
            return []
        node = keys[key][1]
        if not isinstance(node, SequenceNode):
            self.diags.error(self.spot(node), f"{key} of table {name!r} must be a list")
            return []
        return list(node.value)

    def hit_policy(self, keys: dict[str, tuple[Node, Node]], name: str) -> tuple[str, str | None]:
        policy, aggregation = "unique", None
        if "hit_policy" in keys:
            node = keys["hit_policy"][1]
            raw = self.raw(node).strip().lower().replace("-", "_")
            if raw in HIT_POLICIES:
                policy = raw
            elif raw.replace("_", " ") in HIT_POLICY_ALIASES or raw in HIT_POLICY_ALIASES:
                policy, aggregation = HIT_POLICY_ALIASES.get(raw) or HIT_POLICY_ALIASES[raw.replace("_", " ")]
            else:
                policy = ""  # no analysis of a table whose policy is unknown
                self.diags.error(
                    self.spot(node),
                    f"unknown hit policy {self.raw(node)!r}{did_you_mean(raw, HIT_POLICIES, aside=True)}; "
                    f"use one of {', '.join(HIT_POLICIES)}",
                )
        if "aggregation" in keys:
            node = keys["aggregation"][1]
            raw = self.raw(node).strip().lower()
            if raw not in AGGREGATIONS:
                self.diags.error(
                    self.spot(node),
                    f"unknown aggregation {raw!r}{did_you_mean(raw, AGGREGATIONS, aside=True)}; use one of {', '.join(AGGREGATIONS)}",
                )
            elif policy != "collect":
                self.diags.error(self.spot(node), f"aggregation {raw} needs hit_policy: collect, not {policy}")
            else:
                aggregation = raw
        return policy, aggregation

    def output(self, node: Node, table: str) -> Output | None:
        values: tuple[Any, ...] | None = None
        name_node = node
        if isinstance(node, MappingNode):
            keys = self.mapping(node, f"an output of table {table!r}", ("name", "values"))
            if not keys or "name" not in keys:
                self.diags.error(self.spot(node), "an output given as a mapping needs `name:` (and may have `values:`)")
                return None
            name_node = keys["name"][1]
            if "values" in keys:
                raw_values = SafeConstructor().construct_document(keys["values"][1])
                if not isinstance(raw_values, list) or not raw_values:
                    self.diags.error(self.spot(keys["values"][1]), "values must be a list, in priority order")
                else:
                    values = tuple(raw_values)
        name = self.string(name_node, "an output name")
        if name is None:
            return None
        field = name[4:] if name.startswith("set.") else None
        if name not in DECISION_OUTPUTS and not (field and FIELD_NAME.fullmatch(field) and not field.startswith("_")):
            self.diags.error(
                self.spot(name_node),
                f"unknown output {name!r}{did_you_mean(name, DECISION_OUTPUTS, aside=True)}; outputs are "
                "queue, review, reason, fallback or set.<field>",
            )
            return None
        return Output(name, self.spot(name_node), values)

    def rows(self, node: Node, table: Table) -> list[Row]:
        lines: list[tuple[list[tuple[str, int] | Any], Spot, list[Spot]]] = []
        if isinstance(node, ScalarNode) and node.tag == STR:
            spot = self.spot(node)
            offset = 0
            for line in node.value.split("\n"):
                if line.strip() and not line.strip().startswith("#"):
                    cells = [(text, offset + start) for text, start in split_row(line)]
                    lines.append((list(cells), spot, [spot] * len(cells)))
                offset += len(line) + 1
        elif isinstance(node, SequenceNode):
            for item in node.value:
                if isinstance(item, ScalarNode) and item.tag == STR:
                    spot = self.spot(item)
                    cells = split_row(item.value)
                    lines.append((list(cells), spot, [spot] * len(cells)))
                elif isinstance(item, SequenceNode):
                    cells_any: list[Any] = []
                    spots = []
                    for cell in item.value:
                        if isinstance(cell, ScalarNode) and cell.tag != STR:
                            cells_any.append(_Value(SafeConstructor().construct_object(cell)))
                        else:
                            cells_any.append((self.raw(cell), 0))
                        spots.append(self.spot(cell))
                    lines.append((cells_any, self.spot(item), spots))
                else:
                    self.diags.error(self.spot(item), "a row is a list of cells or a string of cells split by |")
        else:
            self.diags.error(self.spot(node), "rows must be a list of rows, or a block of lines (rows: |)")
        rows = []
        width = len(table.inputs) + len(table.outputs)
        for number, (cells, spot, spots) in enumerate(lines, start=1):
            if len(cells) != width:
                first = spots[0] if spots else spot
                offset = cells[0][1] if cells and isinstance(cells[0], tuple) else 0
                self.diags.error(
                    first,
                    f"row {number} of table {table.name!r} has {len(cells)} cells; with {len(table.inputs)} inputs "
                    f"and {len(table.outputs)} outputs it needs {width}",
                    offset,
                )
                continue
            row = self.row(number, cells, spots, spot, table)
            if row is not None:
                rows.append(row)
        if not lines:
            self.diags.error(self.spot(node), f"table {table.name!r} has no rows")
        return rows

    def row(self, number: int, cells: list[Any], spots: list[Spot], spot: Spot, table: Table) -> Row | None:
        n = len(table.inputs)
        parsed: list[Cell] = []
        outputs: list[ex.Node | None] = []
        ok = True
        for i, (cell, cell_spot) in enumerate(zip(cells, spots, strict=True)):
            if i < n:
                if isinstance(cell, _Value):
                    parsed.append(constant_cell(0, cell.value))
                    continue
                result = parse_cell(cell[0], self.diags, cell_spot, cell[1])
                ok = ok and result is not None
                if result is not None:
                    parsed.append(result)
            elif isinstance(cell, _Value):
                outputs.append(None if cell.value is None else ex.Const(0, cell.value))  # null: like -
            elif cell[0].strip() == "-":
                outputs.append(None)
            else:
                expr = ex.parse_expression(cell[0], self.diags, cell_spot, cell[1], bare_words=True)
                ok = ok and expr is not None
                outputs.append(expr)
        if not ok:
            return None
        return Row(number, parsed, outputs, spot, spots[:n], spots[n:])


class _Value:
    """A cell written as a YAML number, boolean or null rather than as text."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value
