"""The prediction log's cost (issue 2): logging on against off, identity service and banking77.

    .venv/bin/python bench/logging_bench.py [--rounds 5] [--duration 8]

Interleaved rounds: in each, the same service is served with the log on and off (which goes
first alternates) (server
pinned to CPU 0, wrk to CPU 1, 64 connections), and both throughput and the server's CPU time
per request (its whole process group, user plus system, from /proc) are measured. Throughput
on a shared machine swings by tens of percent from one minute to the next; CPU time per
request swings much less, and on a saturated core the throughput cost of logging is its CPU
cost. Reported: the median over rounds of each round's ratio. Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the shared harness: start, stop, wrk, shipway_cmd)

TICKS = os.sysconf("SC_CLK_TCK")
TARGET = 0.05


def group_cpu_seconds(pgid: int) -> float:
    """User plus system CPU of every process in a process group (the arbiter and its workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def measure(target: Path, log: bool, work: Path, duration: int) -> tuple[float, float]:
    port = run.free_port()
    flags = () if log else ("--no-log",)
    proc = run.start(run.shipway_cmd(target, port, work / f"{port}.db", *flags), work)
    try:
        run.wait_for(f"http://127.0.0.1:{port}/ready")
        run.wrk(f"http://127.0.0.1:{port}/predict", 2)  # warm-up
        before = group_cpu_seconds(proc.pid)
        result = run.wrk(f"http://127.0.0.1:{port}/predict", duration)
        cpu = group_cpu_seconds(proc.pid) - before
    finally:
        run.stop(proc)
    return result["rps"], cpu / (result["rps"] * duration) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=int, default=6)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, target in (("identity", run.IDENTITY), ("banking77 (batching, rules)", run.BANKING77)):
            on, off = [], []
            for i in range(args.rounds):
                # Alternate which side goes first, so a machine that speeds up or slows down
                # over a round does not favour one side.
                for log in (True, False) if i % 2 == 0 else (False, True):
                    (on if log else off).append(measure(target, log, Path(tmp), args.duration))
            rps_cost = 1 - statistics.median(a[0] / b[0] for a, b in zip(on, off, strict=True))
            cpu_cost = 1 - statistics.median(b[1] / a[1] for a, b in zip(on, off, strict=True))
            rows.append((name, on, off, rps_cost, cpu_cost))
            print(f"  {name}: throughput cost {rps_cost:.1%}, CPU cost {cpu_cost:.1%}", file=sys.stderr)
    print(f"{args.rounds} interleaved rounds of {args.duration} s per side; medians of per-round ratios.\n")
    print(
        "| service | req/s log on | req/s log off | cost in throughput | CPU us/request on | off | cost in CPU per request | target |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, on, off, rps_cost, cpu_cost in rows:
        verdict = "met" if cpu_cost <= TARGET else "NOT met"
        print(
            f"| {name} | {statistics.median(x[0] for x in on):,.0f} | {statistics.median(x[0] for x in off):,.0f} "
            f"| {rps_cost:.1%} | {statistics.median(x[1] for x in on):.1f} | {statistics.median(x[1] for x in off):.1f} "
            f"| {cpu_cost:.1%} | at most 5%: {verdict} |"
        )
    print("\nPer round, throughput on/off and CPU per request off/on:\n")
    for name, on, off, _, _ in rows:
        pairs = ", ".join(f"{a[0] / b[0]:.2f} / {b[1] / a[1]:.2f}" for a, b in zip(on, off, strict=True))
        print(f"- {name}: {pairs}")


if __name__ == "__main__":
    main()
