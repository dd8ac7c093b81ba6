"""A rules backtest of the exported log over columns (issue 20), beside the row path, same run.

    .venv/bin/python bench/backtest_columns_bench.py [--rows 10000000] [--side-rows 1000000] [--rounds 2]

The log: banking77 predictions as the export writes them (`output.intent`, `output.probability`
typed columns beside the JSON documents, `documents_ok`, `mode`; a pool of 20,000 outputs as
bench/backtest_bench.py makes them), in one Parquet file per 1,000,000 rows. The backtest:
examples/banking77 rules.yaml (current) against rules-proposed.yaml, as `shipway rules backtest
--log` runs it (`BacktestJob` on the local engine, one process, batches of 65,536 rows).

1. Side by side on `--side-rows` rows: today's row path (every row through the rules stage,
   `BacktestJob.__call__` on rows) and the column path (`BacktestJob.table`), interleaved
   rounds; the reports must be equal.
2. The column path on `--rows` rows.

Wall and CPU time (time.process_time: every thread of this process) with the load average.
Prints JSON and writes bench/results/backtest_columns.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from backtest_engine_bench import banking77_job  # noqa: E402

from shipway.engine import Source, run  # noqa: E402
from shipway.experiments.backtest import BacktestJob, merged  # noqa: E402


class RowsOnly:
    """Today's path: the same job, without its `table` method, so the engine hands it rows."""

    def __init__(self, job: BacktestJob) -> None:
        self.job = job

    def setup(self) -> None:
        self.job.setup()

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        return self.job(rows)


def write_log(folder: Path, rows: int, labels: list[str]) -> list[Path]:
    rng = np.random.default_rng(7)
    pool = 20_000
    intents = np.array(labels, dtype=object)[rng.integers(0, len(labels), pool)]
    p = np.round(rng.random(pool), 4)
    alt = np.array(labels, dtype=object)[rng.integers(0, len(labels), pool)]
    docs = [
        orjson.dumps(
            {
                "intent": i,
                "probability": float(q),
                "alternatives": [{"intent": a, "probability": round(float(q) / 2, 4)}],
            }
        ).decode()
        for i, q, a in zip(intents, p, alt, strict=True)
    ]
    outputs, intent_col, p_col = pa.array(docs), pa.array(list(intents), pa.string()), pa.array(p)
    files = []
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        pick = pa.array(rng.integers(0, pool, n))
        ids = np.char.add("r", np.arange(start, start + n).astype(str))
        table = pa.table(
            {
                "request_id": pa.array(ids.astype(object), pa.string()),
                "ts": pa.array(1_700_000_000 + np.arange(start, start + n) * 0.01),
                "service": pa.array(np.full(n, "banking77", dtype=object), pa.string()),
                "inputs": pa.array(np.full(n, '{"text":"I am still waiting on my card?"}', dtype=object), pa.string()),
                "outputs": outputs.take(pick),
                "decision": pa.nulls(n, pa.string()),
                "mode": pa.array(np.where(rng.random(n) < 0.01, "shadow", "on").astype(object), pa.string()),
                "documents_ok": pa.array(np.ones(n, dtype=bool)),
                "output.intent": intent_col.take(pick),
                "output.probability": p_col.take(pick),
            }
        )
        path = folder / f"part-{start // 1_000_000:04d}.parquet"
        pq.write_table(table, path, compression="zstd", row_group_size=100_000)
        files.append(path)
    return files


def timed(fn: Any) -> tuple[float, float, float, Any]:
    """Wall, CPU (this process's threads and its finished worker processes) and the load."""
    cpu, wall = _cpu(), time.perf_counter()
    value = fn()
    return time.perf_counter() - wall, _cpu() - cpu, os.getloadavg()[0], value


def _cpu() -> float:
    children = os.times()
    return time.process_time() + children.children_user + children.children_system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--side-rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes for the column path on --rows (1: this one)"
    )
    args = parser.parse_args()
    job, labels = banking77_job()
    result: dict[str, Any] = {
        "rows": args.rows,
        "side_rows": args.side_rows,
        "jobs": args.jobs,
        "columns": job.columns(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = write_log(Path(tmp), max(args.rows, args.side_rows), labels)
        side = Source.parquet(files[: max(1, args.side_rows // 1_000_000)], job.columns())
        rows_side = Source.parquet(files[: max(1, args.side_rows // 1_000_000)], BacktestJob.COLUMNS)
        runs: dict[str, list[tuple[float, float, float]]] = {"rows": [], "columns": [], "columns_all": []}
        reports = []
        for _ in range(args.rounds):
            for name, how in (
                ("rows", lambda: merged(run(RowsOnly(job), rows_side, batch_size=65_536))),
                ("columns", lambda: merged(run(job, side, batch_size=65_536))),
            ):
                wall, cpu, load, report = timed(how)
                runs[name].append((wall, cpu, load))
                reports.append(report.to_dict())
                print(name, round(wall, 2), round(cpu, 2), load, file=sys.stderr, flush=True)
        assert all(r == reports[0] for r in reports), "the row and column paths disagree"
        whole = Source.parquet(files, job.columns())
        for _ in range(args.rounds):
            wall, cpu, load, report = timed(lambda: merged(run(job, whole, batch_size=65_536, jobs=args.jobs)))
            runs["columns_all"].append((wall, cpu, load))
            print("columns_all", round(wall, 2), round(cpu, 2), load, file=sys.stderr, flush=True)
        result["changed_all"] = report.changed
        result["total_all"] = report.total + report.skipped
    result["changed_side"] = reports[0]["changed"]
    result["runs"] = runs
    result["median"] = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in runs.items() if v}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "backtest_columns.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
