"""Batch scoring of the banking77 router against the model's own batched throughput.

    .venv/bin/python bench/score_bench.py [--rows 200000] [--rounds 3]

The texts are the test split's, repeated to --rows, in a Parquet file. Each round runs,
one after the other (interleaved, since the machine is shared): the bare model
(`model.predict_proba` over the texts in batches of 1024), the service's own
`predict_batch` on the same batches, `shipway score` in this process (the file read,
validated, staged, predicted, ruled and written), all three pinned to one core; then
`shipway score --jobs 2` on two cores. Medians over the rounds; wall time, including
loading the model (once per worker process for --jobs 2).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import joblib
import pyarrow as pa
import pyarrow.parquet as pq

from shipway.scoring import score

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"
BATCH = 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with (EXAMPLE / "data" / "test.csv").open() as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    texts = (texts * (args.rows // len(texts) + 1))[: args.rows]
    sys.path.insert(0, str(EXAMPLE))
    import service  # the example's service.py

    model = joblib.load(EXAMPLE / "artifacts" / "model.joblib")
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    messages = [[service.Message(text=t) for t in batch] for batch in batches]
    both = os.sched_getaffinity(0)
    one = {min(both)}
    timings: dict[str, list[float]] = {"model": [], "predict_batch": [], "score": [], "score_jobs2": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "texts.parquet"
        pq.write_table(pa.table({"text": texts}), data)
        for _ in range(args.rounds):
            os.sched_setaffinity(0, one)
            started = time.perf_counter()
            for batch in batches:
                model.predict_proba(batch)
            timings["model"].append(time.perf_counter() - started)
            started = time.perf_counter()
            for batch in messages:
                service.predict_batch(model, batch)
            timings["predict_batch"].append(time.perf_counter() - started)
            started = time.perf_counter()
            summary = score(EXAMPLE, data, Path(tmp) / "one.parquet", batch_size=BATCH)
            timings["score"].append(time.perf_counter() - started)
            assert summary.rows == args.rows and summary.errors == 0
            os.sched_setaffinity(0, both)  # the worker processes inherit it
            started = time.perf_counter()
            summary = score(EXAMPLE, data, Path(tmp) / "two.parquet", batch_size=BATCH, jobs=2)
            timings["score_jobs2"].append(time.perf_counter() - started)
            assert pq.read_table(Path(tmp) / "two.parquet").equals(pq.read_table(Path(tmp) / "one.parquet"))
    median = {name: statistics.median(values) for name, values in timings.items()}
    rate = {name: args.rows / seconds for name, seconds in median.items()}
    result = {
        "rows": args.rows,
        "rounds": args.rounds,
        "cores": len(both),
        "seconds": {k: [round(v, 2) for v in vs] for k, vs in timings.items()},
        "rows_per_s": {k: round(v) for k, v in rate.items()},
        "score_vs_model": round(rate["score"] / rate["model"], 3),
        "score_vs_predict_batch": round(rate["score"] / rate["predict_batch"], 3),
        "jobs2_vs_jobs1": round(rate["score_jobs2"] / rate["score"], 3),
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "score.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(
        "| run | rows/s (median) | x model |\n|---|---|---|\n"
        + "\n".join(
            f"| {name} | {rate[name]:,.0f} | {rate[name] / rate['model']:.2f} |"
            for name in ("model", "predict_batch", "score", "score_jobs2")
        )
    )


if __name__ == "__main__":
    main()
