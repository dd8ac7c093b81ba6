"""A rules backtest over a batch of the exported log as columns: the same report as `replay`.

`replay` (backtest.py) sends every logged row through the rules stage, a few microseconds a
row; ten million rows take minutes. `replay_table` decides a whole Arrow batch of the export
(its typed columns, docs/analysis.md) with each side's rule sets evaluated over columns
(rules/columns.py, a second evaluator of the same expression tree), applying the stage's
semantics over columns: rows answered in mode off or shadow skipped, the candidate beside the
live rules in shadow (decided, never returned) or canary (its share of rows, by the same
bucket of `canary_key`, with `meta.canary` true), `meta.time` the logged time. What the
column evaluator is not sure of, it leaves to `replay`: whole batches when a rule set has no
column form, and single rows it marks unsure. The examples are the earliest changed rows per
change; they are replayed through the rules stage, so their content is the row path's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shipway.experiments.backtest import BacktestJob, BacktestReport, Row, replay
from shipway.rules import RuleSet
from shipway.rules.columns import ColumnDecisions, ColumnRules, NotColumnar
from shipway.rules.live import Active, canary_bucket
from shipway.store.outcomes import OutputReader

__all__ = ["replay_table"]

ROW_COLUMNS = ("request_id", "ts", "inputs", "outputs", "decision", "mode")


def replay_table(
    table: Any,
    current: RuleSet | Active | None,
    proposed: RuleSet | Active,
    *,
    examples: int = 3,
    outcomes: Mapping[str, Mapping[str, Any]] | None = None,
    reader: OutputReader | None = None,
) -> BacktestReport:
    """The backtest of one batch of the exported log (an Arrow table with the export's columns).
    With `outcomes` (`replay`'s), the rows whose outcome came back are scored through `replay`."""
    import numpy as np
    import pyarrow.compute as pc

    current, proposed = Active.of(current), Active.of(proposed)

    def by_rows(rows: Any, scored: bool = True) -> BacktestReport:
        return replay(
            _rows(rows), current, proposed, examples=examples, outcomes=outcomes if scored else None, reader=reader
        )

    sides = [(active, ColumnRules.of(active.live), ColumnRules.of(active.candidate)) for active in (current, proposed)]
    columnar = all(
        (active.live is None) == (live is None) and (active.candidate is None) == (candidate is None)
        for active, live, candidate in sides
    )
    if not columnar or "documents_ok" not in table.column_names:
        return by_rows(table)
    skipped = _answered_default(table) | ~table.column("documents_ok").fill_null(False).to_numpy(zero_copy_only=False)
    kept = table.filter(pc.invert(_arrow(skipped))) if skipped.any() else table
    report = by_rows(table.slice(0, 0))  # versions, the fields the rules read, empty scores
    report.skipped = int(skipped.sum())
    if not kept.num_rows:
        return report
    columns = {name: kept.column(name) for name in kept.column_names}
    queues: list[Any] = []
    constants: list[Any] = []
    try:
        a = _decide(sides[0], kept, columns, queues, constants)
        b = _decide(sides[1], kept, columns, queues, constants)
    except NotColumnar:
        return by_rows(table)
    sure = a.sure & b.sure
    if outcomes:  # a row whose outcome came back is scored on its decisions: the row path has them
        sure &= ~np.isin(kept.column("request_id").to_numpy(zero_copy_only=False), list(outcomes))
    unsure = kept.filter(_arrow(~sure)) if not sure.all() else None
    kept = kept.filter(_arrow(sure)) if unsure is not None else kept
    if unsure is not None:
        a, b = _take(a, sure), _take(b, sure)
    changed = _count(report, kept, a, b, queues, constants) if kept.num_rows else None
    if report.changed:
        report.examples = by_rows(_examples(kept, a, b, changed, queues, examples), scored=False).examples
    if unsure is not None and unsure.num_rows:
        report = report.merge(by_rows(unsure))
    return report


def job_columns(job: BacktestJob) -> tuple[str, ...]:
    """`BacktestJob.columns`: COLUMNS, `documents_ok` and the typed columns its rules read."""
    current, proposed = job.rule_sets()
    read: set[str] = set()
    for rules in (proposed, current.live, current.candidate):
        columnar = ColumnRules.of(rules)
        read |= columnar.columns if columnar is not None else set()
    return (*job.COLUMNS, "documents_ok", *sorted(read - {"ts", "meta.canary"}))


def job_table(job: BacktestJob, table: Any) -> BacktestReport:
    """`BacktestJob.table`: its window's and service's rows of the batch, through `replay_table`."""
    import pyarrow.compute as pc

    chosen = []
    for op, value in ((pc.greater_equal, job.since), (pc.less, job.until)):
        if value is not None:
            chosen.append(op(table.column("ts"), value))
    if job.service is not None and "service" in table.column_names:
        chosen.append(pc.fill_null(pc.equal(table.column("service"), job.service), True))
    for mask in chosen:
        table = table.filter(mask)
    current, proposed = job.rule_sets()
    return replay_table(table, current, proposed, examples=job.examples, outcomes=job.outcomes, reader=job.reader)


def _decide(side: Any, table: Any, columns: dict[str, Any], queues: list[Any], constants: list[Any]) -> ColumnDecisions:
    """One side's decisions as the rules stage makes them (rules/live.py)."""
    import numpy as np

    active, live, candidate = side
    n = table.num_rows
    canary = np.zeros(n, dtype=bool)
    if active.candidate is not None and active.candidate_mode == "canary":
        requests = table.column("inputs").to_pylist()
        outputs = table.column("outputs").to_pylist()
        key = active.canary_key
        canary = np.fromiter(
            (
                canary_bucket(key, orjson.loads(r), orjson.loads(o)) < active.canary
                for r, o in zip(requests, outputs, strict=True)
            ),
            dtype=bool,
            count=n,
        )
    columns = {**columns, "meta.canary": canary}
    chosen = [
        ColumnDecisions.empty(n, queues) if rules is None else rules.decide(columns, n, queues, constants)
        for rules in (live, candidate)
    ]
    if not canary.any():
        return chosen[0]
    return _where(canary, chosen[1], chosen[0])


def _where(mask: Any, yes: ColumnDecisions, no: ColumnDecisions) -> ColumnDecisions:
    import numpy as np

    absent = np.full(len(mask), -1, dtype=np.int32)
    sets = {name: np.where(mask, yes.set.get(name, absent), no.set.get(name, absent)) for name in {**yes.set, **no.set}}
    return ColumnDecisions(
        np.where(mask, yes.queue, no.queue),
        np.where(mask, yes.review, no.review),
        np.where(mask, yes.fallback, no.fallback),
        sets,
        np.where(mask, yes.sure, no.sure),
    )


def _take(d: ColumnDecisions, rows: Any) -> ColumnDecisions:
    return ColumnDecisions(
        d.queue[rows], d.review[rows], d.fallback[rows], {k: v[rows] for k, v in d.set.items()}, d.sure[rows]
    )


def _count(
    report: BacktestReport, table: Any, a: ColumnDecisions, b: ColumnDecisions, queues: list[Any], constants: list[Any]
) -> Any:
    """Count the batch's decisions into `report`, as `backtest._compare` counts rows; where they changed."""
    import numpy as np

    report.total = table.num_rows
    ts = table.column("ts").to_numpy()
    report.first_ts, report.last_ts = float(ts.min()), float(ts.max())
    found, first, counts = np.unique(_pairs(a, b, len(queues)), return_index=True, return_counts=True)
    for index in np.argsort(first, kind="stable"):  # in order of first appearance, as the row path counts
        qa, qb = divmod(int(found[index]), len(queues))
        report.queues[(queues[qa], queues[qb])] += int(counts[index])
    changed = a.queue != b.queue
    for counter, mine, theirs in ((report.review, a.review, b.review), (report.fallback, a.fallback, b.fallback)):
        moved = mine != theirs
        for key, n in (("added", int((moved & theirs).sum())), ("removed", int((moved & mine).sum()))):
            if n:
                counter[key] += n
        changed |= moved
    overrides = _sets_differ(a, b, constants, table.num_rows)
    report.overrides = int(overrides.sum())
    changed |= overrides
    report.changed = int(changed.sum())
    return changed


def _pairs(a: ColumnDecisions, b: ColumnDecisions, k: int) -> Any:
    return a.queue.astype("int64") * k + b.queue


def _sets_differ(a: ColumnDecisions, b: ColumnDecisions, constants: list[Any], rows: int) -> Any:
    """Where the two decisions' `set` dicts differ (Python's == on their values)."""
    import numpy as np

    out = np.zeros(rows, dtype=bool)
    absent = np.full(rows, -1, dtype=np.int32)
    k = len(constants)
    equal = np.array([[x == y for y in constants] for x in constants], dtype=bool).reshape(k, k)
    for name in {**a.set, **b.set}:
        x, y = a.set.get(name, absent), b.set.get(name, absent)
        both = (x >= 0) & (y >= 0)
        same = np.zeros(rows, dtype=bool)
        if both.any():
            same[both] = equal[x[both], y[both]]
        out |= ((x >= 0) != (y >= 0)) | (both & ~same)
    return out


def _examples(table: Any, a: ColumnDecisions, b: ColumnDecisions, changed: Any, queues: list[Any], k: int) -> Any:
    """The rows that can be the earliest `k` changed rows of each change, by time (ties at the
    cut kept): replaying them row by row picks the examples, by time then request id."""
    import numpy as np
    import pyarrow as pa

    change = np.where(a.queue == b.queue, -1, _pairs(a, b, len(queues)))  # -1: same queue, other change
    ts = table.column("ts").to_numpy()
    picked: list[Any] = []
    for code in np.unique(change[changed]):
        group = np.flatnonzero(changed & (change == code))
        if len(group) > k:
            cut = np.partition(ts[group], k - 1)[k - 1]
            group = group[ts[group] <= cut]
        picked.append(group)
    rows = table.select([c for c in ROW_COLUMNS if c in table.column_names])  # only what `_rows` reads is taken
    return rows.take(pa.array(np.sort(np.concatenate(picked))))


def _answered_default(table: Any) -> Any:
    """backtest._answered_default over columns: the mode column, else the logged decision."""
    import numpy as np
    import pyarrow.compute as pc

    n = table.num_rows
    mode = table.column("mode") if "mode" in table.column_names else None
    decision = table.column("decision") if "decision" in table.column_names else None
    by_decision = np.zeros(n, dtype=bool)
    if decision is not None:
        by_decision = pc.match_substring(decision, '"answer":"default"').fill_null(False).to_numpy(zero_copy_only=False)
    if mode is None:
        return by_decision
    logged = mode.is_valid().to_numpy(zero_copy_only=False)
    not_on = pc.not_equal(mode, "on").fill_null(False).to_numpy(zero_copy_only=False)
    return np.where(logged, not_on, by_decision)


def _rows(table: Any) -> list[Row]:
    """The rows of `table` as `replay` takes them."""
    names = table.column_names
    columns = [table.column(c).to_pylist() if c in names else [None] * table.num_rows for c in ROW_COLUMNS]
    return list(zip(*columns, strict=True))


def _arrow(mask: Any) -> Any:
    import pyarrow as pa

    return pa.array(mask, pa.bool_())
