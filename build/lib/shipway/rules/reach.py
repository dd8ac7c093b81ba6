"""Which rows and rules can fire: unreachable rows, overlaps under `unique`, conflicts under `any`.

Cells and simple conditions (a field compared with constants, ranges, lists,
missing/present, joined by `and`) become `Region`s; anything else is
unknown, and unknown never produces a diagnostic. The same analysis tells
the compiler when a `unique` or `any` table can run as first-hit: when its
rows provably never overlap (or agree when they do).
"""

from __future__ import annotations

from dataclasses import dataclass

from shipway.rules import expressions as ex
from shipway.rules.cells import Cell, Interval
from shipway.rules.diagnostics import Diagnostics
from shipway.rules.model import Row, Rule, Spec, Table
from shipway.rules.regions import EVERYTHING, Region
from shipway.rules.types import ANY, Type

__all__ = ["TableInfo", "analyse"]

Cube = dict[str, Region]  # field -> the values the condition allows; absent fields are unconstrained


@dataclass
class TableInfo:
    """How to run a table: rows in evaluation order; `first` when the first match is the answer."""

    order: list[Row]
    first: bool


def analyse(spec: Spec, diags: Diagnostics, types: dict[int, Type], paths: dict[str, Type]) -> dict[str, TableInfo]:
    infos: dict[str, TableInfo] = {}
    stoppers: list[tuple[Rule, Cube]] = []
    for step in spec.steps:
        if isinstance(step, Table):
            if step.hit_policy:
                infos[step.name] = _table(step, diags, types)
            continue
        cube, exact = _condition(step.when, paths) if step.when is not None else ({}, True)
        if cube is not None and any(r.empty for r in cube.values()):
            diags.warning(
                step.when_spot or step.spot, f"rule {step.name!r} can never fire: its condition is never true"
            )
        elif cube is not None:
            for earlier, earlier_cube in stoppers:
                if all(cube.get(p, _domain(paths.get(p))).within(r) for p, r in earlier_cube.items()):
                    diags.warning(
                        step.when_spot or step.spot,
                        f"rule {step.name!r} can never fire: rule {earlier.name!r} (stop: true) fires "
                        "whenever it would, and stops",
                    )
                    break
        if step.stop and cube is not None and exact:
            stoppers.append((step, cube))
    return infos


def _domain(t: Type | None) -> Region:
    return Region.kinds((t or ANY).known)


# -- tables --------------------------------------------------------------------


def _table(table: Table, diags: Diagnostics, types: dict[int, Type]) -> TableInfo:
    domains = [_domain(types.get(id(node))) for node in table.inputs]
    regions = [[_cell(c, d) for c, d in zip(row.cells, domains, strict=True)] for row in table.rows]
    policy = table.hit_policy
    order = list(table.rows)
    if policy == "priority":
        order = sorted(table.rows, key=lambda row: _rank(table, row))
    if policy in ("first", "priority"):
        by_number = {row.number: i for i, row in enumerate(table.rows)}
        seen: list[int] = []
        for row in order:
            i = by_number[row.number]
            _unreachable(table, row, i, seen, regions, diags)
            seen.append(i)
        return TableInfo(order, True)
    if policy not in ("unique", "any"):
        _empty_rows(table, regions, diags)
        return TableInfo(order, False)
    proven = True
    for j in range(len(table.rows)):
        if _is_empty(regions[j]):
            _warn_empty(table, table.rows[j], diags)
            continue
        for i in range(j):
            overlap = _overlap(regions[i], regions[j])
            if overlap is None:
                proven = False
            elif overlap:
                a, b = table.rows[i], table.rows[j]
                same = _same_outputs(a, b)
                if policy == "unique" or same is False:
                    why = "hit_policy unique allows one" if policy == "unique" else "with different outputs"
                    diags.error(
                        b.cell_spots[0] if b.cell_spots else b.spot,
                        f"rows {a.number} and {b.number} of table {table.name!r} can both match ({why}); "
                        "narrow one of them, or use hit_policy first",
                        b.cells[0].pos if b.cells else 0,
                    )
                    proven = False
                elif same is None:
                    proven = False
    return TableInfo(order, proven)


def _rank(table: Table, row: Row) -> tuple[int, ...]:
    rank = []
    for output, node in zip(table.outputs, row.outputs, strict=True):
        if output.values is None:
            continue
        value = node.value if isinstance(node, ex.Const) else None
        rank.append(output.values.index(value) if value in output.values else len(output.values))
    return tuple(rank)


def _cell(cell: Cell, domain: Region) -> Region | None:
    if cell.is_any:
        return domain
    region: Region | None = Region()
    for test in cell.tests:
        if isinstance(test, Interval):
            part = None
            if isinstance(test.low, ex.Const) and isinstance(test.high, ex.Const):
                part = Region.interval(test.low.value, test.high.value, test.low_closed, test.high_closed)
        elif test.op == "null":
            part = Region(null=True)
        elif isinstance(test.expr, ex.Const):
            part = Region.compare(test.op, test.expr.value)
        else:
            part = None
        if part is None or region is None:
            return None
        region = region.union(part)
    if region is None:
        return None
    return (region.complement() if cell.negated else region).intersect(domain)


def _is_empty(regions: list[Region | None]) -> bool:
    return any(r is not None and r.empty for r in regions)


def _warn_empty(table: Table, row: Row, diags: Diagnostics) -> None:
    diags.warning(
        row.cell_spots[0] if row.cell_spots else row.spot,
        f"row {row.number} of table {table.name!r} can never match: one of its cells matches no value",
        row.cells[0].pos if row.cells else 0,
    )


def _empty_rows(table: Table, regions: list[list[Region | None]], diags: Diagnostics) -> None:
    for row, cells in zip(table.rows, regions, strict=True):
        if _is_empty(cells):
            _warn_empty(table, row, diags)


def _overlap(a: list[Region | None], b: list[Region | None]) -> bool | None:
    """True: some input matches both rows; False: none does; None: unknown."""
    unknown = False
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            unknown = True
        elif x.intersect(y).empty:
            return False
    return None if unknown else True


def _same_outputs(a: Row, b: Row) -> bool | None:
    for x, y in zip(a.outputs, b.outputs, strict=True):
        if x is None and y is None:
            continue
        if isinstance(x, ex.Const) and isinstance(y, ex.Const):
            if x.value != y.value or type(x.value) is not type(y.value):
                return False
            continue
        return None if x is not None and y is not None else False
    return True


def _unreachable(
    table: Table, row: Row, j: int, earlier: list[int], regions: list[list[Region | None]], diags: Diagnostics
) -> None:
    mine = regions[j]
    where = (row.cell_spots[0] if row.cell_spots else row.spot, row.cells[0].pos if row.cells else 0)
    if _is_empty(mine):
        _warn_empty(table, row, diags)
        return
    if any(r is None for r in mine):
        return
    for i in earlier:
        theirs = regions[i]
        if all(t is not None and m is not None and m.within(t) for m, t in zip(mine, theirs, strict=True)):
            number = table.rows[i].number
            diags.warning(
                where[0],
                f"row {row.number} of table {table.name!r} can never fire: row {number} matches "
                f"everything it matches{' first' if table.hit_policy == 'first' else ' with a higher priority'}",
                where[1],
            )
            return
    # Covered by several earlier rows that differ from it in one column only.
    for column in range(len(mine)):
        cover = Region()
        for i in earlier:
            theirs = regions[i]
            if all(
                c == column or (t is not None and m is not None and m.within(t))
                for c, (m, t) in enumerate(zip(mine, theirs, strict=True))
            ):
                part = theirs[column]
                if part is not None:
                    cover = cover.union(part)
        current = mine[column]
        if current is not None and not cover.empty and current.within(cover):
            diags.warning(
                where[0],
                f"row {row.number} of table {table.name!r} can never fire: the rows before it match "
                "everything it matches",
                where[1],
            )
            return


# -- ordered rules -------------------------------------------------------------


def _condition(node: ex.Node, paths: dict[str, Type]) -> tuple[Cube | None, bool]:
    """The condition as a cube, and whether the cube is exact (else it only contains the condition)."""
    if isinstance(node, ex.Const) and node.value is True:
        return {}, True
    parts = node.values if isinstance(node, ex.BoolOp) and node.op == "and" else (node,)
    cube: Cube = {}
    exact = True
    for part in parts:
        found = _atom(part)
        if found is None:
            exact = False
            continue
        path, region = found
        region = region.intersect(_domain(paths.get(path)))
        cube[path] = cube[path].intersect(region) if path in cube else region
    return cube, exact


def _atom(node: ex.Node) -> tuple[str, Region] | None:
    if isinstance(node, ex.Not):
        inner = _atom(node.operand)
        return None if inner is None else (inner[0], inner[1].complement())
    if isinstance(node, ex.Call) and node.name in ("missing", "present"):
        arg = node.args[0]
        if isinstance(arg, ex.Field) and not arg.dynamic:
            null = Region(null=True)
            return arg.dotted(), null if node.name == "missing" else null.complement()
        return None
    if not isinstance(node, ex.Compare):
        return None
    fields = [o for o in node.operands if isinstance(o, ex.Field)]
    if len(fields) != 1 or fields[0].dynamic:
        return None
    field = fields[0]
    region = EVERYTHING
    for i, op in enumerate(node.ops):
        left, right = node.operands[i], node.operands[i + 1]
        part = _compare(op, left, right, field)
        if part is None:
            return None
        region = region.intersect(part)
    return field.dotted(), region


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _compare(op: str, left: ex.Node, right: ex.Node, field: ex.Field) -> Region | None:
    if op in ("in", "not in"):
        if left is not field or not isinstance(right, ex.ListExpr):
            return None
        region = Region()
        for item in right.items:
            if not isinstance(item, ex.Const) or item.value is None:
                return None
            part = Region.value(item.value)
            if part is None:
                return None
            region = region.union(part)
        return region if op == "in" else region.complement().minus_null()
    if left is field and isinstance(right, ex.Const):
        return Region.compare(op, right.value)
    if right is field and isinstance(left, ex.Const):
        return Region.compare(_FLIP[op], left.value)
    return None
