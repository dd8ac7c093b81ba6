"""How long the prediction log's writer keeps the request path waiting, in-process (issue 15).

    .venv/bin/python bench/log_stall_bench.py [--seconds 6] [--rate 13000] [--runs 3]

One process pinned to one CPU, as `bench/latency_bench.py` pins each server. Its main thread
stands in for a saturated event loop: a tight Python loop that adds one identity-sized plain
entry to a `PredictionLog` (SQLite, a file of its own) every 1/`--rate` s and otherwise only
reads the clock. Every gap between two of its iterations longer than 0.2 ms is a stretch in
which something else had the GIL or the CPU: with the log on, mostly the writer (taking the
buffer, encoding, SQLite, the rollups); with it off, the machine's other processes. The
figures per variant, log off first as the floor: the share of the run's time lost in gaps,
the number of gaps per second over 0.5, 1 and 2 ms, and the longest, each the median of
`--runs` runs (variants interleaved run by run).

A variant is a switch interval (`--switch MS`, several allowed) with the writer as it ships.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the shared harness)

CHILD = """
import sys, time, tempfile
from pathlib import Path
from shipway.store.prediction_log import PredictionLog

seconds, rate, switch = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
sys.setswitchinterval(switch / 1000)
doc = b'{"text": "I am still waiting on my card, it has been two weeks now"}'
context = ("identity", "v1", None, None, None, "on")
with tempfile.TemporaryDirectory() as tmp:
    log = PredictionLog(f"sqlite:///{tmp}/log.db", spool_dir=Path(tmp) / "spool")
    log.start()
    clock = time.pthread_getcpuclockid(log._thread.ident)
    if len(sys.argv) > 4 and sys.argv[4] == "idle":
        import os
        os.sched_setscheduler(log._thread.native_id, os.SCHED_IDLE, os.sched_param(0))
    cpu = time.clock_gettime
    extend = log.plain(context)
    period = 1.0 / rate
    stalls = []  # the writer's CPU seconds within each gap of this loop
    started = last = due = checked = time.perf_counter()
    w_last = w_start = cpu(clock)
    n = 0
    while last - started < seconds:
        now = time.perf_counter()
        w = cpu(clock)
        if now - last > 0.0002 and w - w_last > 0.0001:
            stalls.append(w - w_last)
        last, w_last = now, w
        if now >= due:
            due += period
            extend((str(n), time.time(), 1.0, doc, doc))
            n += 1
            if now - checked > 0.5:  # the request path asks for its way in again (see PredictionLog.plain)
                checked = now
                extend = log.plain(context)
    elapsed = last - started
    writer = cpu(clock) - w_start
    log.close()
    written = log.stats["written"]
print(writer / elapsed, sum(stalls) / elapsed, *(sum(g > t for g in stalls) / elapsed for t in (0.0005, 0.001, 0.002)),
      max(stalls, default=0.0), n / elapsed, written / n)
"""


def one(seconds: float, rate: float, switch: float, src: str | None, policy: str = "") -> list[float]:
    env = None if src is None else {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    out = subprocess.run(
        ["taskset", "-c", run.SERVER_CPU, sys.executable, "-c", CHILD, str(seconds), str(rate), str(switch), policy],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    return [float(x) for x in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rate", type=float, default=13000.0, help="entries a second (identity at 64 connections)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--switch", type=float, action="append", help="switch interval in ms (default: 5)")
    parser.add_argument("--build", action="append", default=[], help="NAME=SRC: the same on another checkout")
    parser.add_argument("--idle", action="store_true", help="also this build with the writer thread SCHED_IDLE")
    args = parser.parse_args()
    builds: dict[str, str | None] = {"this build": None}
    builds.update(spec.split("=", 1) for spec in args.build)  # type: ignore[misc]
    parser_idle = args.idle
    variants = [
        (f"{build}, switch interval {s:g} ms", s, src, "")
        for build, src in builds.items()
        for s in args.switch or [5.0]
    ]
    if parser_idle:
        variants.append(("this build, writer SCHED_IDLE", 5.0, None, "idle"))
    results: dict[str, list[list[float]]] = {name: [] for name, _, _, _ in variants}
    load = os.getloadavg()[0]
    for i in range(args.runs):
        for name, switch, src, policy in variants if i % 2 == 0 else variants[::-1]:
            results[name].append(one(args.seconds, args.rate, switch, src, policy))
    print(
        f"{args.runs} runs of {args.seconds:g} s at {args.rate:,.0f} entries/s, one CPU; load average "
        f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; medians over runs.\n"
    )
    print(
        "| variant | writer CPU | of it in the loop's gaps | stretches/s > 0.5 ms | > 1 ms | > 2 ms | longest ms "
        "| entries/s | written / added |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        med = [statistics.median(r[i] for r in rows) for i in range(8)]
        print(
            f"| {name} | {med[0]:.2%} | {med[1]:.2%} | {med[2]:.1f} | {med[3]:.1f} | {med[4]:.1f} | {med[5] * 1000:.2f} "
            f"| {med[6]:,.0f} | {med[7]:.3f} |"
        )


if __name__ == "__main__":
    main()
