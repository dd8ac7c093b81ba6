"""Where a scored row's CPU time goes: each part of `shipway score`'s batch path timed alone.

    .venv/bin/python bench/score_parts.py [--rows 50000] [--rounds 2]

The banking77 test texts, repeated to --rows, in Arrow batches of 1,024, in this process with
the collector kept off the loaded model (as `shipway score` runs). Each round times, one after
the other: the bare `model.predict_proba`; `ScoreJob.table` on every batch (the whole path but
the file's reading and writing); then its parts one by one on the same batches: the rows, the
input schema (`Pipeline.parse_many`), the service's `before` stages, its `predict_batch` and,
beside it, its `predict_columns` (what scoring runs when the service has it), their check
against the output schema (`ColumnCheck.check`), the rules and the output table over those
columns; then, as the path without `predict_columns` runs them, the rules stage over columns (`LiveRules.decide_columns`) and, beside it, its row form
(`decide_many`), the output schema, and the output table with its decision column. CPU microseconds a row
(`time.process_time`), every round printed: the parts do not add up exactly to the whole on a
loaded machine.
"""

from __future__ import annotations

import argparse
import csv
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from shipway.core.answer_columns import ColumnCheck
from shipway.engine.row_batches import rows_of
from shipway.scoring.columns import decision_columns
from shipway.scoring.score import ScoreJob

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"
BATCH = 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with (EXAMPLE / "data" / "test.csv").open() as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    texts = (texts * (args.rows // len(texts) + 1))[: args.rows]
    job = ScoreJob(str(EXAMPLE))
    job.setup()
    pipeline = job.pipeline
    assert pipeline is not None
    names = [stage.name for stage in pipeline.stages]
    assert names == ["normalise", "truncate", "predict", "rules"], names
    before, predict, rules = pipeline.stages[:2], pipeline.stages[2], pipeline.stages[3]
    sys.path.insert(0, str(EXAMPLE))
    import service  # the example's service.py

    model = service.load(EXAMPLE / "artifacts")
    batches = [pa.table({"text": texts[i : i + BATCH]}) for i in range(0, len(texts), BATCH)]
    gc.freeze()

    def timed(label: str, work: Callable[[], Any]) -> None:
        started = time.process_time()
        work()
        print(f"{label:38s} {(time.process_time() - started) / args.rows * 1e6:6.2f} us/row", flush=True)

    def one_round() -> None:
        timed("model.predict_proba", lambda: [model.predict_proba(b.column(0).to_pylist()) for b in batches])
        timed("ScoreJob.table (all of it)", lambda: [job.table(b) for b in batches])
        rows = [rows_of(b) for b in batches]
        timed("  rows from the Arrow batch", lambda: [rows_of(b) for b in batches])
        timed("  input schema (parse_many)", lambda: [pipeline.parse_many(r) for r in rows])
        parsed = [pipeline.parse_many(r) for r in rows]
        timed("  service's before stages", lambda: [pipeline._run_stages(before, list(p), p) for p in parsed])
        timed("  service's predict_batch", lambda: [predict.many(p, p) for p in parsed])
        if predict.columns is not None:
            answer_columns = predict.columns
            timed("  service's predict_columns", lambda: [answer_columns(p, p) for p in parsed])
            raw = [answer_columns(p, p) for p in parsed]
            check = ColumnCheck(pipeline.output_schema)
            timed(
                "  the columns checked (ColumnCheck)",
                lambda: [check.check(r, len(p)) for r, p in zip(raw, parsed, strict=True)],
            )
            answers = [check.check(r, len(p)) for r, p in zip(raw, parsed, strict=True)]
            timed(
                "  rules over the columns", lambda: [rules.columns(a, p) for a, p in zip(answers, parsed, strict=True)]
            )
            ruled = [rules.columns(a, p) for a, p in zip(answers, parsed, strict=True)]

            def column_tables() -> list[Any]:
                return [
                    job._table([None] * len(a), decision_columns(d, len(a)), (a, np.arange(len(a))))
                    for a, d in zip(answers, ruled, strict=True)
                ]

            timed("  output table from the columns, decisions included", column_tables)
        outputs = [predict.many(p, p) for p in parsed]
        pairs = list(zip(outputs, parsed, strict=True))
        decide_columns = rules.columns
        assert decide_columns is not None
        timed("  rules over columns (decide_columns)", lambda: [decide_columns(o, p) for o, p in pairs])
        timed("  (rules row by row, decide_many)", lambda: [rules.many(o, p) for o, p in pairs])
        timed("  output schema (validate_many)", lambda: [pipeline.output_schema.validate_many(o) for o in outputs])
        decided = [decide_columns(o, p) for o, p in pairs]
        timed(
            "  output table, decision column included",
            lambda: [job._table(o, decision_columns(d, len(o))) for o, d in zip(outputs, decided, strict=True)],
        )

    for round_ in range(args.rounds):
        print(f"round {round_ + 1}")
        one_round()


if __name__ == "__main__":
    main()
