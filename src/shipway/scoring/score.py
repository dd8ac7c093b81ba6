"""Batch scoring: a dataset through the project's pipeline, rules included, into Parquet.

    summary = score("examples/banking77", "messages.csv", "scored.parquet", jobs=2)

Every row goes through the pipeline `shipway predict` and `/predict` run (input schema,
stages, predict_batch, rules, output schema), in batches; a service's predict_columns answers
them as columns where it has one (core/answer_columns.py). A row that fails keeps its place:
its output columns are null and `error` says why; the run goes on. Each row of the output
carries the ids of the model, rules, dataset and training run that produced it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import TypeAdapter

from shipway.core.pipeline import Decided, Pipeline, any_of
from shipway.engine import Source, run
from shipway.engine.row_batches import NOT_JSON, rows_of
from shipway.errors import DataError, InputError, ShipwayError
from shipway.project import Project, load_pipeline
from shipway.scoring.columns import DECISION, OutputColumns, as_is, decision_array, decision_columns, not_finite
from shipway.scoring.parts import scored_in_parts

__all__ = ["IDS", "ScoreJob", "ScoreSummary", "score"]

IDS = ("service", "model_version", "rules_version", "dataset_version", "run_id")
META = ("row", "decision", "error", *IDS)
ROW_GROUP = 65_536


@dataclass
class ScoreJob:
    """What each worker runs: the project's pipeline over batches of rows (docs/scaling.md)."""

    target: str
    rules: bool | str = True
    pipeline: Pipeline | None = field(default=None, repr=False)
    project: Project | None = field(default=None, repr=False)  # loaded already, in this process

    def __getstate__(self) -> dict[str, Any]:
        # each worker loads its own
        return {"target": self.target, "rules": self.rules, "pipeline": None, "project": None}

    def setup(self) -> None:
        if self.pipeline is not None:
            return
        pipeline = load_pipeline(self.project or self.target, self.rules)
        schema = pipeline.input_schema.json_schema()
        self._one_column = schema.get("type") != "object" and "$ref" not in schema
        self._columns = OutputColumns.from_json_schema(pipeline.output_schema.json_schema())
        clash = sorted(set(self._columns.names) & set(META))
        if clash:
            raise DataError(
                f"the output field(s) {', '.join(clash)} would clash with the columns shipway adds "
                f"({', '.join(META)}); rename them in the output type to score this service."
            )
        self.schema = pa.schema(
            [
                *self._columns.fields(),
                pa.field("decision", DECISION),
                pa.field("error", pa.string()),
                *(pa.field(name, pa.string()) for name in IDS),
            ]
        )
        self._dump_all = TypeAdapter(list[pipeline.output_schema.hint]).dump_python  # type: ignore[name-defined]
        self._as_is = as_is(pipeline.output_schema.adapter.core_schema)
        self.pipeline = pipeline

    def __call__(self, rows: list[dict[str, Any]]) -> pa.Table:
        values: list[Any] = []
        failed: dict[int, ShipwayError] = {}
        for i, row in enumerate(rows):
            try:
                values.append(self._value(row))
            except ShipwayError as err:
                failed[i] = err
                values.append(None)
        return self._scored(values, failed)

    def table(self, table: pa.Table) -> pa.Table:
        """A Parquet batch as read: its rows without a dict per row where the input is one value
        (a column of texts), as `__call__` takes them otherwise."""
        if not self._one_column:
            return self._scored(rows_of(table), {})  # each row is the input as it is (`_value`)
        if table.num_columns != 1 or table.column(0).null_count:
            return self(rows_of(table))
        return self._scored(table.column(0).to_pylist(), {})

    def _scored(self, values: list[Any], failed: dict[int, ShipwayError]) -> pa.Table:
        """The rows' input values through the pipeline into the output table; `failed` holds the
        rows that failed before the input schema (their values are placeholders)."""
        pipeline = self.pipeline
        assert pipeline is not None, "setup() first"
        n = len(values)
        results: list[Any] = [None] * n
        places = [i for i in range(n) if i not in failed] if failed else range(n)
        checked = pipeline.parse_many([values[i] for i in places] if failed else values)
        if failed or any_of(checked, ShipwayError):
            parsed: list[Any] = []
            live: list[int] = []
            for i, value in zip(places, checked, strict=True):
                if isinstance(value, ShipwayError):
                    results[i] = value
                else:
                    parsed.append(value)
                    live.append(i)
        else:
            parsed, live = checked, list(range(n))
        for i, err in failed.items():
            results[i] = err
        # Rows that failed the schema stay out of the batch: one bad row must not make the
        # stages fall back to running its whole batch one row at a time.
        run = pipeline.run_columns(parsed)
        if len(live) == n:
            results = run.values
        else:
            for i, result in zip(live, run.values, strict=True):
                results[i] = result
        decided = None
        if run.columns is not None:
            decided = decision_columns(run.columns, len(run.places))
            # the column form's rows, in the batch's rows (nulls where it gave none)
            if len(run.places) != n or any_of(results, ShipwayError):
                index = np.full(n, -1)
                index[np.asarray(live)[np.asarray(run.places, dtype=np.intp)]] = np.arange(len(run.places))
                index[[i for i, r in enumerate(results) if isinstance(r, ShipwayError)]] = -1
                decided = decided.take(pa.array(index, mask=index < 0))
        answers = None
        if run.answers is not None:  # the rows whose outputs are columns: their places in the batch
            answers = (run.answers, np.asarray(live)[np.asarray(run.places, dtype=np.intp)])
        return self._table(results, decided, answers)

    def _value(self, row: dict[str, Any]) -> Any:
        if NOT_JSON in row:
            raise InputError(row[NOT_JSON])
        if not self._one_column:
            return row
        if len(row) != 1:
            raise InputError(
                f"the input type is {self.pipeline.input_schema.name if self.pipeline else '?'}, one value, "
                f"so each row needs exactly one column; this row has {sorted(row)}"
            )
        return next(iter(row.values()))

    def _table(
        self, results: list[Any], decided: pa.Array | None = None, answers: tuple[Any, np.ndarray] | None = None
    ) -> pa.Table:
        """The output table of a batch's results; `decided` is the decision column where the rules
        decided over columns (`Decided` results then only where the row path decided); `answers`
        the service's column answers and the batch's rows they answer (a None result in those
        rows whose output is in the columns)."""
        assert self.pipeline is not None
        n = len(results)
        if answers is not None:
            return self._columns_table(results, decided, *answers)
        outputs: list[Any] = [None] * n
        errors: list[str | None] = [None] * n
        if not any_of(results, ShipwayError) and not any_of(results, Decided):  # every row answered
            answered, places = results, list(range(n))
        else:
            answered, places = [], []
            for i, result in enumerate(results):
                if isinstance(result, ShipwayError):
                    errors[i] = f"{type(result).__name__}: {result}"
                else:
                    answered.append(result.output if isinstance(result, Decided) else result)
                    places.append(i)
        decision = decision_array([_decision(r) for r in results]) if decided is None else decided
        arrays = None
        if self._as_is:
            if len(answered) == n:
                outputs = list(answered)
            else:
                for i, output in zip(places, answered, strict=True):
                    outputs[i] = output
            arrays = self._columns.arrays_of(outputs)
        if arrays is None:
            outputs = [None] * n
            for i, output in zip(places, self._jsonable(answered), strict=True):
                outputs[i] = output
            arrays = self._columns.arrays(outputs)
        ids = self.pipeline.ids
        arrays = [
            *arrays,
            decision,
            pa.array(errors, pa.string()),
            *(pa.repeat(pa.scalar(ids.get(name), pa.string()), n) for name in IDS),
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _columns_table(self, results: list[Any], decided: pa.Array | None, answers: Any, rows: np.ndarray) -> pa.Table:
        """`_table` where the service answered in columns: their arrays for the rows they answer,
        the other rows' (the row path's, failures) from `_table` of those rows alone."""
        n = len(results)
        index = np.full(n, -1, dtype=np.int64)
        index[rows] = np.arange(len(rows))
        # A NaN or an infinity is null in the answer's JSON, or what the output type's config says:
        # those rows' outputs come from their answers as the row path makes them.
        odd = [j for j in not_finite(answers.arrays, len(answers)) if results[rows[j]] is None]
        if odd:
            results = list(results)
            for j, answer in zip(odd, answers.rows(odd), strict=True):
                results[rows[j]] = answer
        own = [i for i, r in enumerate(results) if r is not None]  # answered by the row path, or failed
        index[own] = -1
        arrays = answers.arrays
        if own or len(rows) != n:
            others = self._table([results[i] for i in own]).columns[: len(arrays)] if own else None
            index[own] = len(answers) + np.arange(len(own))
            merged = []
            for column, other in zip(arrays, others or [None] * len(arrays), strict=True):
                joined = column if other is None else pa.concat_arrays([column, *other.chunks])
                merged.append(joined.take(pa.array(index, mask=index < 0)))
            arrays = merged
        errors = [f"{type(r).__name__}: {r}" if isinstance(r, ShipwayError) else None for r in results] if own else []
        errors_column = pa.array(errors, pa.string()) if own else pa.nulls(n, pa.string())
        decision = decided if decided is not None else decision_array([_decision(r) for r in results])
        ids = self.pipeline.ids if self.pipeline is not None else {}
        return pa.Table.from_arrays(
            [
                *arrays,
                decision,
                errors_column,
                *(pa.repeat(pa.scalar(ids.get(name), pa.string()), n) for name in IDS),
            ],
            schema=self.schema,
        )

    def _jsonable(self, outputs: list[Any]) -> list[Any]:
        try:
            return list(self._dump_all(outputs, mode="json"))
        except Exception:  # one bad output: find it, as the output schema would
            assert self.pipeline is not None
            return [self.pipeline.output_schema.to_jsonable(o) for o in outputs]


def _decision(result: Any) -> Any:
    """A result's decision for the `decision` column: the rules' Decision, a JSON-ready dict, or None."""
    if not isinstance(result, Decided):
        return None
    return result.decided if result.decided is not None else result.decision


@dataclass
class ScoreSummary:
    """What a scoring run did: rows written, rows that failed, the ids, the time."""

    out: Path
    rows: int = 0
    errors: int = 0
    seconds: float = 0.0
    ids: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "rows": self.rows,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds, 1) if self.seconds else None,
            "ids": self.ids,
        }


def score(
    target: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    rules: bool | str = True,
    format: str | None = None,
    engine: str = "local",
    jobs: int = 1,
    batch_size: int = 1024,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreSummary:
    """Score every row of `data` with the project in `target`; write Parquet to `out`.

    The file appears only when the run finishes (it is written beside `out` and renamed).
    `progress(rows, errors)` is called after every batch. With the local engine and `jobs` > 1,
    each worker process reads, scores and writes its own parts of the file (scoring/parts.py).
    """
    source = Source.open(data, format)
    out = Path(out)
    if out.is_dir():
        raise DataError(
            f"--out {out} is a folder; give the path of the Parquet file to write, e.g. {out}/scored.parquet"
        )
    path = Path(target)
    name = str(path.resolve()) if path.exists() else str(target)
    project = Project.load(name)
    job = ScoreJob(name, rules, project=project)
    # Worker processes fork from this one once it has loaded the model, unless the project says
    # its model is not fork-safe (serve.preload off, which `shipway serve` follows too).
    preload = bool(project.settings["serve.preload"])
    summary = ScoreSummary(out)
    started = time.perf_counter()
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    writer: pq.ParquetWriter | None = None
    held: list[pa.Table] = []  # written a row group of ROW_GROUP rows at a time, not one per batch
    tables: Iterator[pa.Table]
    if engine == "local" and jobs > 1:
        folder = out.with_name(f".{out.name}.{os.getpid()}.parts")
        tables = scored_in_parts(
            job, source, folder, jobs=jobs, batch_size=batch_size, preload=preload, progress=progress
        )
        progress = None  # the workers report the rows they score
    else:
        tables = run(job, source, engine=engine, jobs=jobs, batch_size=batch_size, preload=preload)
    try:
        for table in tables:
            n = table.num_rows
            table = table.add_column(0, "row", pa.array(np.arange(summary.rows, summary.rows + n, dtype=np.int64)))
            if writer is None:
                out.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(partial, table.schema)
                summary.ids = {name: table.column(name)[0].as_py() for name in IDS}
            held.append(table)
            summary.rows += n
            summary.errors += n - table.column("error").null_count
            if sum(t.num_rows for t in held) >= ROW_GROUP:
                whole = pa.concat_tables(held)
                full = whole.num_rows - whole.num_rows % ROW_GROUP
                writer.write_table(whole.slice(0, full), ROW_GROUP)
                held = [whole.slice(full)] if full < whole.num_rows else []
            if progress is not None:
                progress(summary.rows, summary.errors)
        if writer is None:
            raise DataError(f"the dataset {source.path} holds no rows; there is nothing to score.")
        if held:
            writer.write_table(pa.concat_tables(held), ROW_GROUP)
        writer.close()
        writer = None
        partial.replace(out)
    finally:
        if hasattr(tables, "close"):
            tables.close()  # stops the workers and removes their files, if it ended early
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    summary.seconds = time.perf_counter() - started
    return summary
