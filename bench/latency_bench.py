"""Latency at every load (issue 15): one connection and 64, and p99 with the log on and off.

    .venv/bin/python bench/latency_bench.py [--rounds 8] [--burst 3] [--part all|batching|log]

Every server is started once and stays up for the run (each pinned to CPU 0, wrk to CPU 1).
A round loads each server in turn for `--burst` seconds, the order reversed from one round
to the next. This machine is shared and its speed drifts from one minute to the next, so
each figure is the median over rounds of a ratio taken within the round (bursts seconds
apart see about the same machine). Prints a Markdown section.

- batching: bare Starlette calling banking77's model once per request, against shipway's
  banking77 (batching, rules, log on), at 1 connection and at 64.
- log: identity and banking77 at 64 connections, log on and log off: their p99.
- cpu: at 1 connection, each server's CPU time per request (its whole process group, user plus
  system, from /proc) and its threads' context switches per request (voluntary: a thread went
  to sleep and had to be woken; involuntary: it was preempted), for bare Starlette, banking77
  as configured (the lone request runs inline) and banking77 with `--no-inline` (through the
  predict thread). These are counts of work and wake-ups, so they move far less with the
  machine's load than req/s do.
- hop: the round trip from the event loop to the predict thread and back, with nothing to
  run, through `PredictThread.call` and through `loop.run_in_executor` on a one-thread
  `ThreadPoolExecutor` (the batcher's way before issue 15), in one process on CPU 0.

`--build NAME=SRC` adds the same shipway servers running another checkout of shipway (its
`src` folder first on PYTHONPATH), named `NAME:...`, to compare builds in one run;
`--variant NAME=FLAGS` adds a banking77 server with more `shipway serve` flags
(e.g. `--variant wait0='--max-wait-ms 0'`) to the batching part, and to the cpu part
(in place of its `--no-inline` server). `--banking77 FOLDER` serves another copy of the example
(with its artifacts) in every build: one whose shipway.toml an older build can read.

A worker of a build with `log.writer = "process"` writes its log from a writer process of its
own, which inherits the server's CPU from taskset; the bench moves it to CPU 1, beside wrk,
as the OS would place it on a machine where nothing pins the server (`--writer-cpu server`
leaves it on the server's CPU).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the shared harness: start, stop, wrk, shipway_cmd)

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
TICKS = os.sysconf("SC_CLK_TCK")
Readings = dict[tuple[str, int], list[dict[str, float]]]


def ms(text: str | None) -> float:
    """wrk's latency text ("812.00us", "3.28ms", "1.03s") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text or "")
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def load(url: str, seconds: int, connections: int) -> dict[str, float]:
    result = run.wrk(url, seconds, connections)
    return {
        "rps": result["rps"],
        "p50": ms(result["p50"]),
        "p99": ms(result["p99"]),
        "errors": result["non_2xx"] + result["socket_errors"],
    }


@dataclass
class Server:
    name: str
    target: Path | None  # a shipway project, or None for bare Starlette
    flags: tuple[str, ...] = ()
    env: dict[str, str] | None = None

    def command(self, port: int, work: Path) -> tuple[list[str], Path, dict[str, str] | None]:
        if self.target is None:
            env = {"BANKING77_ARTIFACTS": str(run.BANKING77 / "artifacts")}
            return run.uvicorn_cmd("starlette_banking77:app", port), run.STACKS, env
        store = work / f"{self.name.replace(':', '-')}-{port}.db"
        return run.shipway_cmd(self.target, port, store, *self.flags), work, self.env


def plan(parts: list[str], builds: dict[str, str | None], variants: dict[str, list[str]]) -> list[tuple[Server, int]]:
    """(server, connections) in the order of a round."""
    out: list[tuple[Server, int]] = []
    if "batching" in parts:
        starlette = Server("starlette", None)
        shipway = [Server(f"{b}banking77", run.BANKING77, env=_env(src)) for b, src in builds.items()]
        shipway += [Server(name, run.BANKING77, tuple(flags)) for name, flags in variants.items()]
        out += [(s, c) for c in (1, 64) for s in (starlette, *shipway)]
    if "log" in parts:
        for b, src in builds.items():
            for target in (run.IDENTITY, run.BANKING77):
                for log in (True, False):
                    name = f"{b}{target.name}" + ("" if log else "_off")
                    out.append((Server(name, target, () if log else ("--no-log",), _env(src)), 64))
    # banking77 at 64 connections is in both parts: it is loaded once a round.
    return list({(server.name, c): (server, c) for server, c in out}.values())


def _env(src: str | None) -> dict[str, str] | None:
    return None if src is None else {"PYTHONPATH": str(Path(src).resolve())}


def measure(order: list[tuple[Server, int]], rounds: int, burst: int, writer_cpu: str | None = None) -> Readings:
    readings: Readings = {}
    servers = {s.name: s for s, _ in order}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs: dict[str, Any] = {}
        urls: dict[str, str] = {}
        try:
            for name, server in servers.items():
                port = run.free_port()
                cmd, cwd, env = server.command(port, work)
                procs[name] = run.start(cmd, cwd, env)
                urls[name] = f"http://127.0.0.1:{port}/predict"
            for name, url in urls.items():
                # Generous: eight servers start at once on a machine that may be loaded.
                run.wait_for(url if servers[name].target is None else url.replace("/predict", "/ready"), timeout=300)
                run.wrk(url, 2)  # warm-up
                if writer_cpu is not None:  # the writer process inherits the server's CPU from taskset
                    for pid in run.log_writers(procs[name]):
                        os.sched_setaffinity(pid, {int(writer_cpu)})
            for round_ in range(rounds):
                for server, connections in order if round_ % 2 == 0 else order[::-1]:
                    reading = load(urls[server.name], burst, connections)
                    readings.setdefault((server.name, connections), []).append(reading)
                    print(
                        f"  round {round_ + 1} {server.name:<24} c={connections:<3} {reading['rps']:>8.0f} req/s "
                        f"p50 {reading['p50']:.2f} ms p99 {reading['p99']:.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
                    time.sleep(0.5)  # the log's writer finishes the burst's entries (it flushes every 0.5 s)
        finally:
            for proc in procs.values():
                run.stop(proc)
    return readings


HOP = """
import asyncio, statistics, sys, time
from concurrent.futures import ThreadPoolExecutor
import uvloop
from shipway.serving.predict_thread import PredictThread

N = 3000

async def executor(pool):
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    for i in range(N):
        await loop.run_in_executor(pool, abs, i)
    return (time.perf_counter() - started) / N * 1e6

async def call(thread):
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    for i in range(N):
        future = loop.create_future()
        thread.call(abs, (i,), lambda r, e, f=future: loop.call_soon_threadsafe(f.set_result, r))
        await future
    return (time.perf_counter() - started) / N * 1e6

async def main():
    pool, thread = ThreadPoolExecutor(1), PredictThread()
    pairs = [(await executor(pool), await call(thread)) for _ in range(7)]
    print(statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs))

uvloop.run(main())
"""


def hop() -> tuple[float, float]:
    """Microseconds per round trip: (run_in_executor, PredictThread.call), medians of 7 runs."""
    out = subprocess.run(
        ["taskset", "-c", run.SERVER_CPU, sys.executable, "-c", HOP], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--burst", type=int, default=3, help="seconds of load per burst")
    parser.add_argument("--part", choices=("all", "batching", "log", "hop", "cpu"), default="all", help="one part only")
    parser.add_argument("--build", action="append", default=[], help="NAME=SRC: the servers on another checkout")
    parser.add_argument("--variant", action="append", default=[], help="NAME=FLAGS: one more banking77 server")
    parser.add_argument("--banking77", type=Path, help="another banking77 folder (with artifacts) for every build")
    parser.add_argument(
        "--writer-cpu",
        choices=("load", "server"),
        default="load",
        help="where the prediction log's writer processes run: with wrk (CPU 1), or on the server's CPU",
    )
    args = parser.parse_args()
    parts = ["batching", "log", "hop", "cpu"] if args.part == "all" else [args.part]
    if args.banking77 is not None:  # e.g. a copy without settings an older build does not know
        run.BANKING77 = args.banking77.resolve()
    builds: dict[str, str | None] = {"": None}
    for spec in args.build:
        name, _, src = spec.partition("=")
        if not (Path(src) / "shipway" / "__init__.py").is_file():
            # Without it the servers would quietly import this checkout's shipway instead.
            sys.exit(f"--build {spec}: {src} holds no shipway package; give the src folder of a checkout")
        builds[f"{name}:"] = src
    variants = {name: shlex.split(flags) for name, _, flags in (spec.partition("=") for spec in args.variant)}
    if "cpu" in parts:
        print(cpu_part(args.rounds, args.burst, variants))
    order = plan(parts, builds, variants)
    if order:
        writer_cpu = run.LOAD_CPU if args.writer_cpu == "load" else None
        readings = measure(order, args.rounds, args.burst, writer_cpu)
        print(render(readings, args.rounds, args.burst, list(builds), list(variants)))
    if "hop" in parts:
        executor, call = hop()
        print(
            f"\nThe hand-over to the predict thread and back, nothing run, one process on CPU {run.SERVER_CPU} "
            f"(median of 7 runs of 3,000): `loop.run_in_executor` on a one-thread `ThreadPoolExecutor` "
            f"{executor:.0f} us, `PredictThread.call` {call:.0f} us."
        )


def _group(sid: int) -> tuple[float, int, int]:
    """CPU seconds, voluntary and involuntary context switches of every thread of session `sid`."""
    cpu, voluntary, involuntary = 0.0, 0, 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) != sid:  # the session: run.start puts each server in its own
                continue
            cpu += (int(fields[11]) + int(fields[12])) / TICKS
            for task in os.listdir(f"/proc/{pid}/task"):
                status = Path(f"/proc/{pid}/task/{task}/status").read_text()
                voluntary += int(re.search(r"\bvoluntary_ctxt_switches:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
                involuntary += int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return cpu, voluntary, involuntary


def cpu_part(rounds: int, burst: int, variants: dict[str, list[str]]) -> str:
    servers = [
        Server("starlette", None),
        Server("banking77", run.BANKING77),
        *(
            [Server(name, run.BANKING77, tuple(flags)) for name, flags in variants.items()]
            if variants
            else [Server("banking77 --no-inline", run.BANKING77, ("--no-inline",))]
        ),
    ]
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        procs: dict[str, Any] = {}
        urls: dict[str, str] = {}
        try:
            for server in servers:
                port = run.free_port()
                cmd, cwd, env = server.command(port, Path(tmp))
                procs[server.name] = run.start(cmd, cwd, env)
                urls[server.name] = f"http://127.0.0.1:{port}/predict"
            for server in servers:
                url = urls[server.name]
                run.wait_for(url if server.target is None else url.replace("/predict", "/ready"))
                run.wrk(url, 2, 1)
            for round_ in range(rounds):
                for server in servers if round_ % 2 == 0 else servers[::-1]:
                    before = _group(procs[server.name].pid)
                    result = run.wrk(urls[server.name], burst, 1)
                    after = _group(procs[server.name].pid)
                    n = result["rps"] * burst
                    cpu, vol, invol = ((b - a) / n for a, b in zip(before, after, strict=True))
                    rows.setdefault(server.name, []).append((result["rps"], cpu * 1e6, vol, invol))
        finally:
            for proc in procs.values():
                run.stop(proc)
    lines = [
        f"At 1 connection, {rounds} interleaved rounds of {burst} s bursts (servers on CPU 0, wrk on CPU 1); medians over rounds:",
        "",
        "| server | req/s | CPU us per request | voluntary switches per request | involuntary per request |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in rows.items():
        med = [statistics.median(v[i] for v in values) for i in range(4)]
        lines.append(f"| {name} | {med[0]:,.0f} | {med[1]:,.0f} | {med[2]:.2f} | {med[3]:.2f} |")
    base = statistics.median(
        s / b for (_, s, _, _), (_, b, _, _) in zip(rows["banking77"], rows["starlette"], strict=True)
    )
    lines.append(f"\nCPU per request, banking77 / bare Starlette, median of the rounds' ratios: {base:.2f}x.")
    for name in variants:
        ratio = statistics.median(
            s / b for (_, s, _, _), (_, b, _, _) in zip(rows[name], rows["starlette"], strict=True)
        )
        lines.append(f"CPU per request, {name} / bare Starlette: {ratio:.2f}x.")
    return "\n".join(lines)


def render(r: Readings, rounds: int, burst: int, builds: list[str], variants: list[str]) -> str:
    def ratio(a: str, b: str, c: int, key: str) -> float:
        return statistics.median(x[key] / y[key] for x, y in zip(r[(a, c)], r[(b, c)], strict=True))

    def med(name: str, c: int, key: str) -> float:
        return statistics.median(x[key] for x in r[(name, c)])

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [
        f"{rounds} interleaved rounds; in each, every server in turn gets a {burst} s burst from wrk "
        "(one thread, CPU 1), the order reversed every other round. The servers stay up for the whole "
        "run (each pinned to CPU 0). Each figure is the median over rounds of the ratio within a round; "
        "the machine was shared with other engineers' tests and benchmarks.",
        "",
        "| build | figure | target | measured | |",
        "|---|---|---|---|---|",
    ]
    for b in builds:
        build = b.rstrip(":") or "this one"
        if ("starlette", 1) in r:
            rps_1 = ratio(f"{b}banking77", "starlette", 1, "rps")
            p50_1 = ratio("starlette", f"{b}banking77", 1, "p50")  # as a speed: above 1 is faster
            rps_64 = ratio(f"{b}banking77", "starlette", 64, "rps")
            lines += [
                f"| {build} | banking77 at 1 connection, req/s / bare Starlette's | at least 0.9x | {rps_1:.2f}x "
                f"| {verdict(rps_1 >= 0.9)} |",
                f"| {build} | banking77 at 1 connection, Starlette's p50 / banking77's | at least 0.9x | {p50_1:.2f}x "
                f"| {verdict(p50_1 >= 0.9)} |",
                f"| {build} | banking77 at 64 connections, req/s / one-at-a-time Starlette's | at least 6.5x "
                f"| {rps_64:.2f}x | {verdict(rps_64 >= 6.5)} |",
            ]
        if (f"{b}identity_off", 64) in r:
            for s in ("identity", "banking77"):
                cost = ratio(f"{b}{s}", f"{b}{s}_off", 64, "p99") - 1
                lines.append(
                    f"| {build} | {s} at 64 connections, p99 with the log on / off | at most +15% | {cost:+.0%} "
                    f"| {verdict(cost <= 0.15)} |"
                )
    for name in variants:
        lines.append(
            f"| variant {name} | banking77 at 1 connection, req/s / Starlette's; at 64, req/s / banking77's | "
            f"| {ratio(name, 'starlette', 1, 'rps'):.2f}x; {ratio(name, 'banking77', 64, 'rps'):.2f}x | |"
        )
    lines += [
        "",
        "Medians over rounds of each server's own readings:",
        "",
        "| server | connections | req/s | p50 ms | p99 ms | non-2xx + socket errors (all rounds) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (name, c), readings in r.items():
        errors = sum(x["errors"] for x in readings)
        lines.append(
            f"| {name} | {c} | {med(name, c, 'rps'):,.0f} | {med(name, c, 'p50'):.2f} | {med(name, c, 'p99'):.2f} "
            f"| {errors:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
