"""The prediction log's cost (issue 2): logging on against off, identity service and banking77.

    .venv/bin/python bench/logging_bench.py [--rounds 12] [--burst 3] [--pairs 3]

Both servers of a pair (the same service with the log on and with it off, each pinned to
CPU 0) run side by side for their share of the rounds (the rounds are spread over
`--pairs` fresh pairs, since one process can be a percent faster than another for its
memory layout alone), and wrk (CPU 1, 64 connections) loads them in turn: a burst of `--burst` seconds on one, a pause, a burst on the other, the order
alternating from round to round. Throughput on this shared machine drifts by tens of
percent from one minute to the next; bursts seconds apart see the same machine, so the
ratio within a round is what is compared. The pause after each burst lets the log's
writer finish the burst's records (it flushes every 0.5 s), and the server's CPU time
(its whole process group, user plus system, from /proc) is read across burst and pause,
so the writer's work is charged to the server that caused it. Each round also loads both
servers at once (see `together`). Reported: the median over
rounds of each round's ratio, with the middle half of the ratios. Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the shared harness: start, stop, wrk, shipway_cmd)

TICKS = os.sysconf("SC_CLK_TCK")
TARGET = 0.05
PAUSE_S = 1.5


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


def burst(pgid: int, url: str, seconds: int) -> tuple[float, float]:
    """Requests per second, and CPU microseconds per request counted until the pause ends."""
    before = group_cpu_seconds(pgid)
    result = run.wrk(url, seconds)
    time.sleep(PAUSE_S)
    cpu = group_cpu_seconds(pgid) - before
    return result["rps"], cpu / (result["rps"] * seconds) * 1e6


def together(servers: dict[bool, tuple[int, str]], seconds: int) -> dict[bool, tuple[float, float]]:
    """Both servers loaded at once (two wrk on CPU 1, 32 connections each): the same machine
    for both to the millisecond. Each gets a share of CPU 0; its CPU time per request does not
    depend on the share."""
    before = {log: group_cpu_seconds(pgid) for log, (pgid, _) in servers.items()}
    with ThreadPoolExecutor(2) as pool:
        runs = {log: pool.submit(run.wrk, url, seconds, 32) for log, (_, url) in servers.items()}
        rps = {log: job.result()["rps"] for log, job in runs.items()}
    time.sleep(PAUSE_S)
    return {
        log: (rps[log], (group_cpu_seconds(pgid) - before[log]) / (rps[log] * seconds) * 1e6)
        for log, (pgid, _) in servers.items()
    }


Readings = dict[bool, list[tuple[float, float]]]


def measure(target: Path, work: Path, rounds: int, seconds: int, pairs: int) -> tuple[Readings, Readings]:
    """(alone, together): readings of (req/s, CPU us per request) per round, log on and off, over
    `pairs` fresh pairs of servers (a process's memory layout alone moves its speed by a percent
    or so, the same way in every round it serves)."""
    alone: Readings = {True: [], False: []}
    both: Readings = {True: [], False: []}
    for pair in range(pairs):
        procs = {}
        try:
            for log in (True, False):
                port = run.free_port()
                flags = () if log else ("--no-log",)
                procs[log] = (run.start(run.shipway_cmd(target, port, work / f"{port}.db", *flags), work), port)
            servers = {log: (proc.pid, f"http://127.0.0.1:{port}/predict") for log, (proc, port) in procs.items()}
            for _, url in servers.values():
                run.wait_for(url.replace("/predict", "/ready"))
                run.wrk(url, 2)  # warm-up
            time.sleep(PAUSE_S)
            for i in range(pair, rounds, pairs):
                for log in (True, False) if i % 2 == 0 else (False, True):
                    alone[log].append(burst(*servers[log], seconds))
                for log, reading in together(servers, seconds).items():
                    both[log].append(reading)
        finally:
            for proc, _ in procs.values():
                run.stop(proc)
    return alone, both


def spread(ratios: list[float]) -> str:
    q = statistics.quantiles(ratios, n=4)
    return f"{1 - q[2]:.1%} to {1 - q[0]:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--burst", type=int, default=3, help="seconds of load per burst")
    parser.add_argument("--pairs", type=int, default=3, help="fresh pairs of servers the rounds are spread over")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, target in (("identity", run.IDENTITY), ("banking77 (batching, rules)", run.BANKING77)):
            alone, both = measure(target, Path(tmp), args.rounds, args.burst, args.pairs)
            rps = [a[0] / b[0] for a, b in zip(alone[True], alone[False], strict=True)]
            cpu = [b[1] / a[1] for a, b in zip(both[True], both[False], strict=True)]
            rows.append((name, alone, both, rps, cpu))
            print(
                f"  {name}: throughput cost alone {1 - statistics.median(rps):.1%}, "
                f"CPU cost together {1 - statistics.median(cpu):.1%}",
                file=sys.stderr,
            )
    print(
        f"{args.rounds} rounds over {args.pairs} fresh pairs of servers. Alone: one {args.burst} s burst on each server in turn (64 connections). "
        f"Together: both servers loaded at once for {args.burst} s (32 connections each), so both see the "
        "same machine; on a saturated core the throughput cost of logging is its cost in CPU per request "
        "(1 - CPU off / CPU on). Medians of per-round ratios, and the middle half of them.\n"
    )
    print(
        "| service | req/s log on, alone | log off, alone | throughput cost, alone | middle half "
        "| CPU us/request on, together | off, together | cost in CPU per request | middle half | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, alone, both, rps, cpu in rows:
        cost = 1 - statistics.median(cpu)
        verdict = "met" if cost <= TARGET else "NOT met"
        print(
            f"| {name} | {statistics.median(x[0] for x in alone[True]):,.0f} "
            f"| {statistics.median(x[0] for x in alone[False]):,.0f} "
            f"| {1 - statistics.median(rps):.1%} | {spread(rps)} "
            f"| {statistics.median(x[1] for x in both[True]):.1f} | {statistics.median(x[1] for x in both[False]):.1f} "
            f"| {cost:.1%} | {spread(cpu)} | at most 5%: {verdict} |"
        )
    print("\nPer round, throughput on/off alone, and CPU per request off/on together:\n")
    for name, _, _, rps, cpu in rows:
        print(f"- {name}: " + ", ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(rps, cpu, strict=True)))


if __name__ == "__main__":
    main()
