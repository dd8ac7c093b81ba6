"""The Parquet export's cost beside a saturated service (issue 20): CPU per request.

    .venv/bin/python bench/export_bench.py [--rounds 6] [--burst 3] [--interval 1]

One `shipway serve` of a service (log on, SQLite) is pinned to CPU 0 and saturated by wrk
(CPU 1, 64 connections) in bursts; `shipway export --follow` runs beside it for the whole
time, exporting every `--interval` seconds into Parquet. Each round reads both process
groups' CPU time (user plus system, from /proc) across a burst and the pause after it, so
the writer's and the export's work on the burst's records is charged to the burst. The
export's CPU per request over the server's is the extra CPU per request the export costs.
At the end the export must hold every logged prediction (it kept up). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

import run  # noqa: E402  (the shared harness: start, stop, wrk, shipway_cmd)
from logging_bench import PAUSE_S, group_cpu_seconds  # noqa: E402

from shipway.store import open_store  # noqa: E402
from shipway.store.columnar import read_state  # noqa: E402

TARGET = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--burst", type=int, default=3, help="seconds of load per burst")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between export runs (export.interval_s)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        services = [("identity", run.IDENTITY)]
        if (run.BANKING77 / "artifacts" / "model.joblib").is_file():  # `make train` makes it
            services.append(("banking77 (batching, rules)", run.BANKING77))
        for name, target in services:
            db = work / f"{name.split()[0]}.db"
            export_dir = work / f"{name.split()[0]}-export"
            port = run.free_port()
            server = run.start(run.shipway_cmd(target, port, db), work)
            exporter = None
            try:
                url = f"http://127.0.0.1:{port}/predict"
                run.wait_for(url.replace("/predict", "/ready"))
                run.wrk(url, 2)  # warm-up
                exporter = run.start(
                    [
                        str(run.BIN / "shipway"),
                        "export",
                        str(target),
                        "--store",
                        f"sqlite:///{db}",
                        "--dir",
                        str(export_dir),
                        "--follow",
                        "--interval",
                        str(args.interval),
                    ],
                    work,
                )
                time.sleep(PAUSE_S + args.interval)
                readings = []
                for _ in range(args.rounds):
                    before = group_cpu_seconds(server.pid), group_cpu_seconds(exporter.pid)
                    result = run.wrk(url, args.burst)
                    time.sleep(PAUSE_S + args.interval)
                    served = result["rps"] * args.burst
                    server_us = (group_cpu_seconds(server.pid) - before[0]) / served * 1e6
                    export_us = (group_cpu_seconds(exporter.pid) - before[1]) / served * 1e6
                    readings.append((result["rps"], server_us, export_us, served))
                time.sleep(PAUSE_S + 2 * args.interval)  # the last records written and exported
                with open_store(f"sqlite:///{db}") as store:
                    logged = store.count_predictions()
                state = read_state(export_dir)
                exported = state.rows if state is not None else 0
            finally:
                if exporter is not None:
                    run.stop(exporter)
                run.stop(server)
            rows.append((name, readings, logged, exported))
            print(f"  {name}: {readings}, logged {logged}, exported {exported}", file=sys.stderr)
    print(
        f"{args.rounds} bursts of {args.burst} s (64 connections) on one saturated server (CPU 0) with "
        f"`shipway export --follow --interval {args.interval:g}` beside it; CPU from /proc across each burst and "
        "its pause. Medians over bursts.\n"
    )
    print(
        "| service | req/s | server CPU us/request | export CPU us/request | extra CPU per request, all bursts "
        "(median burst) | logged / exported at the end | target |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, readings, logged, exported in rows:
        # An export run can fall in the next burst's window: the ratio of the sums is the figure.
        total = sum(e * n for _, _, e, n in readings) / sum(s * n for _, s, _, n in readings)
        median = statistics.median(e / s for _, s, e, _ in readings)
        verdict = "met" if total <= TARGET and exported == logged else "NOT met"
        print(
            f"| {name} | {statistics.median(r[0] for r in readings):,.0f} "
            f"| {statistics.median(r[1] for r in readings):.1f} | {statistics.median(r[2] for r in readings):.1f} "
            f"| {total:.1%} ({median:.1%}) | {logged:,} / {exported:,} | at most 5%: {verdict} |"
        )


if __name__ == "__main__":
    main()
