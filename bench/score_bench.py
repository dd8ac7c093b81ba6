"""Batch scoring of the banking77 router against the model's own batched throughput.

    .venv/bin/python bench/score_bench.py [--rows 200000] [--rounds 3] [--jobs-only] [--no-pin]
        [--format parquet|csv|jsonl]

The texts are the test split's, repeated to --rows, in a Parquet file (one row group), or a CSV
or JSON Lines file with --format. Each round runs,
one after the other (interleaved, since the machine is shared): the bare model
(`model.predict_proba` over the texts in batches of 1024), the service's own
`predict_batch` on the same batches, `shipway score` in this process (the file read,
validated, staged, predicted, ruled and written), all three pinned to one core; then
`shipway score --jobs 2` on two cores. The two baselines run with the collector kept off the
loaded model, as `shipway score` runs its job (engine.run.settled): the model at its best.

For every run: wall time including loading the model (for --jobs 2 once, in the parent,
before the workers fork), the steady rate (from the first batch to the last, so without the load),
and CPU seconds per row (this process plus its worker processes, the load included), and
this process's own share (for --jobs 2, the parent's: loading the model before the fork,
writing the output). --jobs-only runs only `shipway score` with one job and with two;
--no-pin lets the one-job runs take either core: on a machine shared with other work, the one
core they are pinned to may be the busier one. Wall
time on a shared machine depends on the other work; CPU time much less. Medians over rounds.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shipway.engine.run import settled
from shipway.scoring import score

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"
BATCH = 1024
RUNS = ("model", "predict_batch", "score", "score_jobs2")
TICKS = os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process alone (with --jobs 2: the parent's share)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def cpu() -> float:
    """CPU seconds of this process and of its children: those that ended (the pool's workers at
    the end of a run) and those still running (the workers during it, read from /proc)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = 0
    for child in multiprocessing.active_children():
        fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        running += int(fields[11]) + int(fields[12])  # utime, stime
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime + running / TICKS


class Clock:
    """Wall and CPU time of one run, and the time its first batch came out (for the steady rate)."""

    def __init__(self) -> None:
        self.first: tuple[float, int, float] | None = None

    def __enter__(self) -> Clock:
        self.wall, self.cpu, self.own = time.perf_counter(), cpu(), own_cpu()
        return self

    def progress(self, rows: int, _errors: int) -> None:
        if self.first is None:
            self.first = (time.perf_counter(), rows, cpu())

    def __exit__(self, *exc: object) -> None:
        end = time.perf_counter()
        self.cpu_end = cpu()
        self.wall, self.cpu = end - self.wall, self.cpu_end - self.cpu
        self.own = own_cpu() - self.own
        self.end = end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated runs to leave out, e.g. predict_batch")
    parser.add_argument("--jobs-only", action="store_true", help="only `shipway score` with one job and with two")
    parser.add_argument(
        "--format", choices=("parquet", "csv", "jsonl"), default="parquet", help="the input file's format"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="let the one-core runs use either core (a fairer wall time when shared)"
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.jobs_only:
        skip |= {"model", "predict_batch"}
    with (EXAMPLE / "data" / "test.csv").open() as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    texts = (texts * (args.rows // len(texts) + 1))[: args.rows]
    sys.path.insert(0, str(EXAMPLE))
    import service  # the example's service.py

    model = service.load(EXAMPLE / "artifacts")
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    both = os.sched_getaffinity(0)
    one = both if args.no_pin else {min(both)}
    wall: dict[str, list[float]] = {name: [] for name in RUNS}
    steady: dict[str, list[float]] = {name: [] for name in RUNS}
    cpu_us: dict[str, list[float]] = {name: [] for name in RUNS}
    steady_cpu_us: dict[str, list[float]] = {name: [] for name in RUNS}
    own_cpu_us: dict[str, list[float]] = {name: [] for name in RUNS}

    def baseline(name: str, work: Callable[[], None]) -> None:
        with settled(), Clock() as clock:
            work()
        wall[name].append(clock.wall)
        steady[name].append(args.rows / clock.wall)
        cpu_us[name].append(clock.cpu / args.rows * 1e6)
        steady_cpu_us[name].append(clock.cpu / args.rows * 1e6)

    def scored(name: str, out: Path, jobs: int) -> None:
        with Clock() as clock:
            summary = score(EXAMPLE, data, out, batch_size=BATCH, jobs=jobs, progress=clock.progress)
        assert summary.rows == args.rows and summary.errors == 0
        assert clock.first is not None
        wall[name].append(clock.wall)
        steady[name].append((args.rows - clock.first[1]) / (clock.end - clock.first[0]))
        cpu_us[name].append(clock.cpu / args.rows * 1e6)
        own_cpu_us[name].append(clock.own / args.rows * 1e6)
        steady_cpu_us[name].append((clock.cpu_end - clock.first[2]) / (args.rows - clock.first[1]) * 1e6)

    load: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / f"texts.{args.format}"
        if args.format == "parquet":
            pq.write_table(pa.table({"text": texts}), data)
        elif args.format == "jsonl":
            data.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
        else:
            with data.open("w", newline="") as fh:
                csv.writer(fh).writerows([["text"], *([text] for text in texts)])
        for round_ in range(args.rounds):
            load[f"round {round_ + 1}"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
            os.sched_setaffinity(0, one)
            if "model" not in skip:
                baseline("model", lambda: [model.predict_proba(b) for b in batches])
            if "predict_batch" not in skip:
                # The messages are built outside the timing: the input schema's work, not the model's.
                messages = [[service.Message(text=t) for t in batch] for batch in batches]
                baseline("predict_batch", lambda ms=messages: [service.predict_batch(model, m) for m in ms])
                del messages
            if "score" not in skip:
                scored("score", Path(tmp) / "one.parquet", 1)
            os.sched_setaffinity(0, both)  # the worker processes inherit it
            if "score_jobs2" not in skip:
                scored("score_jobs2", Path(tmp) / "two.parquet", 2)
                if "score" not in skip:
                    assert pq.read_table(Path(tmp) / "two.parquet").equals(pq.read_table(Path(tmp) / "one.parquet"))
    ran = [name for name in RUNS if wall[name]]
    median = {name: statistics.median(wall[name]) for name in ran}
    rate = {name: args.rows / median[name] for name in ran}
    steady_rate = {name: statistics.median(steady[name]) for name in ran}
    per_row = {name: statistics.median(cpu_us[name]) for name in ran}
    steady_per_row = {name: statistics.median(steady_cpu_us[name]) for name in ran}

    def ratio(values: dict[str, float], a: str, b: str, invert: bool = False) -> float | None:
        if a not in values or b not in values:
            return None
        return round(values[b] / values[a] if invert else values[a] / values[b], 3)

    result = {
        "rows": args.rows,
        "format": args.format,
        "rounds": args.rounds,
        "cores": len(both),
        "load_average": load,
        "wall_seconds": {k: [round(v, 2) for v in vs] for k, vs in wall.items() if vs},
        "rows_per_s": {k: round(v) for k, v in rate.items()},
        "steady_rows_per_s": {k: round(v) for k, v in steady_rate.items()},
        "cpu_us_per_row": {k: round(v, 1) for k, v in per_row.items()},
        "steady_cpu_us_per_row": {k: round(v, 1) for k, v in steady_per_row.items()},
        # this process alone, the model's load included: with --jobs 2, the parent's share
        "parent_cpu_us_per_row": {k: round(statistics.median(v), 1) for k, v in own_cpu_us.items() if v},
        "score_vs_model": ratio(rate, "score", "model"),
        "score_vs_predict_batch": ratio(rate, "score", "predict_batch"),
        "score_vs_predict_batch_steady": ratio(steady_rate, "score", "predict_batch"),
        "score_vs_predict_batch_cpu": ratio(per_row, "score", "predict_batch", invert=True),
        "score_vs_model_cpu": ratio(per_row, "score", "model", invert=True),
        "score_vs_predict_batch_steady_cpu": ratio(steady_per_row, "score", "predict_batch", invert=True),
        "score_vs_model_steady_cpu": ratio(steady_per_row, "score", "model", invert=True),
        "jobs2_vs_jobs1": ratio(rate, "score_jobs2", "score"),
        "jobs2_vs_jobs1_steady": ratio(steady_rate, "score_jobs2", "score"),
        "jobs2_cpu_vs_jobs1_cpu": ratio(per_row, "score_jobs2", "score"),
        "jobs2_steady_cpu_vs_jobs1_steady_cpu": ratio(steady_per_row, "score_jobs2", "score"),
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "score.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(
        "| run | rows/s, wall with the load (median) | steady rows/s | CPU us per row | steady CPU us per row |\n"
        "|---|---|---|---|---|\n"
        + "\n".join(
            f"| {name} | {rate[name]:,.0f} | {steady_rate[name]:,.0f} | {per_row[name]:.1f} | "
            f"{steady_per_row[name]:.1f} |"
            for name in ran
        )
    )


if __name__ == "__main__":
    main()
