"""What the prediction log's writer adds to the tail at 64 connections, counted in CPU time (issue 15).

    .venv/bin/python bench/log_stall_bench.py [--seconds 6] [--runs 4] [--build NAME=SRC ...]

`bench/latency_bench.py --part log` measures the figure itself (p99 at 64 connections, the
log on against off, over HTTP), but on a machine shared with other work the other processes
set that tail, and the log's part of it cannot be seen. This bench counts the log's part
alone. One process, pinned to one CPU as the servers are, stands in for a saturated worker:
its main thread serves 64 closed-loop "connections" in turn, each request `--work-us` of
CPU (the identity service's cost at 64 connections) followed by the plain log entry the
worker adds, while the real `PredictionLog` writer thread writes to a SQLite file. A
request's latency is counted as the CPU time that ran on the core while it was in flight
(the 64 requests' turns): the main thread's own, plus the writer thread's, read from its
thread CPU clock. With `log.writer = "process"` the log's thread in this process only hands
the buffer over, and that is what is counted; the writer process is moved to CPU 1 (it
inherits this CPU from taskset, where the OS would place it anywhere) and its CPU is
reported beside. Other processes' time counts in neither, so the figure holds still on a
loaded machine; what it assumes is one core, where every millisecond the writer runs is one
the requests in flight wait (a worker with a spare core waits only for the GIL).

Reported per build, medians over `--runs` runs (builds interleaved run by run): the p50 and
p99 of that latency with the log off (no writer) and on, the p99 on / off, and the writer's
CPU per entry. `--build NAME=SRC` adds another checkout (its `src` folder first on
PYTHONPATH); `--doc-bytes` sizes each of the entry's two documents (banking77's answers
with their alternatives are about 1 KB).
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
import sys, tempfile, time
from pathlib import Path

seconds, work_us, doc_bytes, logged = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "on"
writer_kind, writer_cpu = sys.argv[5], int(sys.argv[6])  # "" for the build's default writer
CONNECTIONS = 64
doc = ('{"text": "' + "x" * max(0, doc_bytes - 12) + '"}').encode()
context = ("identity", "v1", None, None, None, "on")
cpu, thread_time, perf = time.clock_gettime, time.thread_time, time.perf_counter


def burn(until):  # the request's own work, in Python like the request path's
    while thread_time() < until:
        pass


with tempfile.TemporaryDirectory() as tmp:
    from shipway.store.prediction_log import PredictionLog

    kwargs = {"writer": writer_kind} if writer_kind else {}
    log = PredictionLog(f"sqlite:///{tmp}/log.db", spool_dir=Path(tmp) / "spool", **kwargs)
    process_cpu = lambda: 0.0
    if logged:
        log.start()
        # The log's thread: the writer, or with a writer process the hand-over to it.
        clock = time.pthread_getcpuclockid(log._thread.ident)
        writer = lambda: cpu(clock)
        pid = getattr(log, "writer_pid", None)
        if pid is not None:  # it inherited this CPU from taskset; the OS would place it anywhere
            import os
            os.sched_setaffinity(pid, {writer_cpu})
            ticks = os.sysconf("SC_CLK_TCK")
            deadline = perf() + 30
            while not log.stats["store_up"] and perf() < deadline:  # its start-up is not the writing
                time.sleep(0.01)
            def process_cpu():
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / ticks
    else:
        writer = lambda: 0.0
    extend = log.plain(context)
    work = work_us / 1e6
    latencies = []
    ring = [(thread_time(), writer())] * CONNECTIONS
    started = checked = perf()
    w_start, p_start = writer(), process_cpu()
    n = 0
    while True:
        if n % CONNECTIONS == 0:
            now = perf()
            if now - started > seconds:
                break
            if now - checked > 0.5:  # the request path asks for its way in again (see PredictionLog.plain)
                checked = now
                extend = log.plain(context)
        burn(thread_time() + work)
        if logged:
            extend((str(n), time.time(), 1.0 + (n % 50) / 10, doc, doc))
        mine, its = thread_time(), writer()
        then_mine, then_its = ring[n % CONNECTIONS]
        if n >= CONNECTIONS:
            latencies.append((mine - then_mine) + (its - then_its))
        ring[n % CONNECTIONS] = (mine, its)
        n += 1
    writer_cpu = writer() - w_start
    elsewhere = process_cpu() - p_start
    log.close()
    written = log.stats["written"] if logged else n
latencies.sort()
q = lambda p: latencies[int(p * (len(latencies) - 1))] * 1000
print(q(0.5), q(0.99), q(0.999), writer_cpu / n * 1e6, written / n, elsewhere / n * 1e6)
"""


def one(seconds: float, work_us: float, doc_bytes: int, logged: bool, src: str | None, writer: str) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())} if src else None
    args = [*map(str, (seconds, work_us, doc_bytes)), "on" if logged else "off", writer, run.LOAD_CPU]
    command = ["taskset", "-c", run.SERVER_CPU, sys.executable, "-c", CHILD, *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout.split()
    values = [float(x) for x in out]
    return values + [0.0] * (6 - len(values))  # an older build reports no writer process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--work-us", type=float, default=75.0, help="CPU per request (identity at 64 connections)")
    parser.add_argument("--doc-bytes", type=int, default=64, help="size of each of the entry's two documents")
    parser.add_argument("--build", action="append", default=[], help="NAME=SRC: the same on another checkout")
    parser.add_argument("--writers", default="process,thread", help="log.writer values to run this build with")
    args = parser.parse_args()
    # (src, log.writer): this build once per writer, other builds with their default.
    builds: dict[str, tuple[str | None, str]] = {f"this build, {w}": (None, w) for w in args.writers.split(",") if w}
    for spec in args.build:
        name, _, src = spec.partition("=")
        if not (Path(src) / "shipway" / "__init__.py").is_file():
            sys.exit(f"--build {spec}: {src} holds no shipway package; give the src folder of a checkout")
        builds[name] = (src, "")
    variants = [(build, logged) for build in builds for logged in (False, True)]
    results: dict[tuple[str, bool], list[list[float]]] = {v: [] for v in variants}
    load = os.getloadavg()[0]
    for i in range(args.runs):
        for build, logged in variants if i % 2 == 0 else variants[::-1]:
            src, writer = builds[build]
            results[(build, logged)].append(one(args.seconds, args.work_us, args.doc_bytes, logged, src, writer))
    print(
        f"{args.runs} runs of {args.seconds:g} s per server, 64 connections of {args.work_us:g} us of CPU each, "
        f"documents of {args.doc_bytes} bytes, one CPU; load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end. Latency counted in CPU time on the core (see the docstring); "
        "medians over runs.\n"
    )
    print(
        "| build | p50 ms, log off / on | p99 ms, log off / on | p99 on / off | p99.9 ms on "
        "| log thread CPU us an entry | writer process CPU us an entry (CPU 1) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for build in builds:
        off, on = results[(build, False)], results[(build, True)]
        ratio = statistics.median(b[1] / a[1] for a, b in zip(off, on, strict=True))
        med = lambda rows, i: statistics.median(r[i] for r in rows)  # noqa: E731
        lost = [r[4] for r in on if r[4] < 1]
        print(
            f"| {build} | {med(off, 0):.2f} / {med(on, 0):.2f} | {med(off, 1):.2f} / {med(on, 1):.2f} "
            f"| {ratio - 1:+.1%} | {med(on, 2):.2f} | {med(on, 3):.2f} | {med(on, 5):.2f} |"
            + (f" (runs with records unwritten: {len(lost)})" if lost else "")
        )


if __name__ == "__main__":
    main()
