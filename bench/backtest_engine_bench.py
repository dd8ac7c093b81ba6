"""A rules backtest over logged predictions exported as Parquet, on each engine.

    .venv/bin/python bench/backtest_engine_bench.py [--rows 2000000] [--rounds 2]

The rows are banking77 predictions as bench/backtest_bench.py makes them, written to one
Parquet file (row groups of 100,000). Each round replays them through rules.yaml and
rules-proposed.yaml in this process, in two local worker processes, and on a local Ray
cluster of two CPUs (started once, before the rounds, with its object store capped at
300 MB), one after the other. The reports must be equal. Medians over the rounds; wall
time, including starting the worker processes and the Ray actors.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shipway.engine import Source, run
from shipway.experiments.backtest import BacktestJob, merged

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"


def banking77_job() -> tuple[BacktestJob, list[str]]:
    """examples/banking77 rules.yaml (current) against rules-proposed.yaml, and the labels."""
    import sys

    sys.path.insert(0, str(EXAMPLE))
    import service  # the example's service.py: its schemas check the rules
    from pydantic import TypeAdapter

    labels = json.loads((EXAMPLE / "data" / "categories.json").read_text())
    job = BacktestJob(
        ((EXAMPLE / "rules-proposed.yaml").read_text(), "rules-proposed.yaml"),
        ((EXAMPLE / "rules.yaml").read_text(), "rules.yaml"),
        TypeAdapter(service.Message).json_schema(),
        TypeAdapter(service.Intent).json_schema(),
        labels=labels,
    )
    return job, labels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import ray

    job, labels = banking77_job()
    rng = random.Random(7)
    timings: dict[str, list[float]] = {"local": [], "local_jobs2": [], "ray_jobs2": []}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.parquet"
        started = time.perf_counter()
        outputs = []
        for _ in range(args.rows):
            intent, p = rng.choice(labels), round(rng.random(), 4)
            outputs.append(
                f'{{"intent":"{intent}","probability":{p},"alternatives":[{{"intent":"{rng.choice(labels)}","probability":{round(p / 2, 4)}}}]}}'
            )
        table = pa.table(
            {
                "request_id": [f"r{i}" for i in range(args.rows)],
                "ts": [1_700_000_000 + i * 0.01 for i in range(args.rows)],
                "service": ["banking77"] * args.rows,
                "inputs": ['{"text":"I am still waiting on my card?"}'] * args.rows,
                "outputs": outputs,
            }
        )
        pq.write_table(table, log, row_group_size=100_000)
        del table, outputs
        filled = time.perf_counter() - started
        source = Source.open(log)
        ray.init(num_cpus=2, object_store_memory=300 * 1024**2, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        reports = []
        for _ in range(args.rounds):
            for name, how in (
                ("local", {}),
                ("local_jobs2", {"jobs": 2}),
                ("ray_jobs2", {"engine": "ray", "jobs": 2}),
            ):
                started = time.perf_counter()
                report = merged(run(job, source, batch_size=65_536, **how))  # type: ignore[arg-type]
                timings[name].append(time.perf_counter() - started)
                reports.append(report.to_dict())
        ray.shutdown()
    assert all(r == reports[0] for r in reports), "the engines disagree"
    median = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "rows": args.rows,
        "rounds": args.rounds,
        "changed": reports[0]["changed"],
        "fill_seconds": round(filled, 1),
        "seconds": {k: [round(v, 2) for v in vs] for k, vs in timings.items()},
        "rows_per_s": {k: round(args.rows / v) for k, v in median.items()},
        "projected_10m_seconds": {k: round(v * 10_000_000 / args.rows, 1) for k, v in median.items()},
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "backtest_engines.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
