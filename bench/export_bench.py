"""The Parquet export's cost beside and inside a saturated service (issue 20): CPU per request.

    .venv/bin/python bench/export_bench.py [--rounds 6] [--burst 3] [--interval 10]

Beside: one `shipway serve` of a service (log on, SQLite) is pinned to CPU 0 and saturated by
wrk (CPU 1, 64 connections) in bursts; `shipway export --follow` runs beside it for the whole
time, exporting every `--interval` seconds into Parquet. Each round reads both process
groups' CPU time (user plus system, from /proc) across a burst and the pause after it, so
the writer's and the export's work on the burst's records is charged to the burst. The
export's CPU per request over the server's is the extra CPU per request the export costs.

Inside: two servers of the same service on CPU 0, one with `export.in_serve = true` (every
`--interval` seconds) and one without, loaded at once (two wrk on CPU 1, 32 connections
each), so both see the same machine to the millisecond; the extra CPU per request is the
first's CPU per request over the second's. At the end each export must hold every logged
prediction (it kept up). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

import run  # noqa: E402  (the shared harness: start, stop, wrk, shipway_cmd)
from logging_bench import PAUSE_S, group_cpu_seconds  # noqa: E402

from shipway.store import open_store  # noqa: E402
from shipway.store.columnar import read_state  # noqa: E402

TARGET = 0.05
# The servers' ports: a range of their own (--ports), so that runs beside other work never collide.
_PORTS: list[int] = []


def _port() -> int:
    while _PORTS:
        port = _PORTS.pop(0)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return run.free_port()


def _counts(db: Path, export_dir: Path) -> tuple[int, int]:
    with open_store(f"sqlite:///{db}") as store:
        logged = store.count_predictions()
    state = read_state(export_dir)
    return logged, state.rows if state is not None else 0


def _copy(target: Path, work: Path, name: str, toml: str) -> Path:
    """The service in a folder of its own, `toml` added to its shipway.toml (or as it)."""
    folder = Path(shutil.copytree(target, work / name, ignore=shutil.ignore_patterns("__pycache__", ".shipway")))
    config = folder / "shipway.toml"
    config.write_text((config.read_text() if config.is_file() else f'name = "{target.name}"\n') + toml)
    return folder


def beside(
    name: str, target: Path, work: Path, args: argparse.Namespace, src: str | None = None
) -> tuple[list[Any], int, int]:
    """`shipway export --follow` in its own process beside the server; both run the code in
    `src` (a checkout's src folder, on PYTHONPATH) when given: the baseline."""
    tag = "baseline" if src else "beside"
    db = work / f"{name}-{tag}.db"
    export_dir = work / f"{name}-{tag}-export"
    env = {"PYTHONPATH": src} if src else None
    port = _port()
    server = run.start(run.shipway_cmd(target, port, db), work, env)
    exporter = None
    try:
        url = f"http://127.0.0.1:{port}/predict"
        run.wait_for(url.replace("/predict", "/ready"))
        run.wrk(url, 2)  # warm-up
        exporter = run.start(
            [
                *(str(run.BIN / "shipway"), "export", str(target), "--store", f"sqlite:///{db}"),
                *("--dir", str(export_dir), "--follow", "--interval", str(args.interval)),
            ],
            work,
            env,
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
        logged, exported = _counts(db, export_dir)
    finally:
        if exporter is not None:
            run.stop(exporter)
        run.stop(server)
    return readings, logged, exported


def inside(name: str, target: Path, work: Path, args: argparse.Namespace) -> tuple[list[Any], int, int]:
    """Two servers loaded at once: export.in_serve on, and off (the baseline)."""
    folders = {
        True: _copy(target, work, f"{name}-in-serve", f"\n[export]\nin_serve = true\ninterval_s = {args.interval}\n"),
        False: _copy(target, work, f"{name}-plain", ""),
    }
    servers: dict[bool, tuple[Any, str, Path]] = {}
    try:
        for on, folder in folders.items():
            port = _port()
            db = work / f"{folder.name}.db"
            proc = run.start(run.shipway_cmd(folder, port, db), work)
            print(f"  {folder.name}: pid {proc.pid} port {port}", file=sys.stderr)
            servers[on] = (proc, f"http://127.0.0.1:{port}/predict", db)
        for _, url, _ in servers.values():
            run.wait_for(url.replace("/predict", "/ready"))
            run.wrk(url, 2)  # warm-up
        time.sleep(PAUSE_S + args.interval)  # the first export run (and its imports) before measuring
        readings = []
        for _ in range(args.rounds):
            got = together({on: (proc.pid, url) for on, (proc, url, _) in servers.items()}, args.burst)
            time.sleep(args.interval)  # the export's run over the burst's records
            extra = {on: group_cpu_seconds(servers[on][0].pid) for on in servers}
            readings.append((got, extra))
        time.sleep(PAUSE_S + 2 * args.interval)
        logged, exported = _counts(servers[True][2], folders[True] / ".shipway" / "export")
    finally:
        for proc, _, _ in servers.values():
            run.stop(proc)
    return readings, logged, exported


def together(servers: dict[bool, tuple[int, str]], seconds: int) -> dict[bool, tuple[float, float]]:
    """Both servers loaded at once; each one's requests and CPU seconds from before the burst to
    the end of its pause."""
    before = {on: group_cpu_seconds(pgid) for on, (pgid, _) in servers.items()}
    with ThreadPoolExecutor(2) as pool:
        runs = {on: pool.submit(run.wrk, url, seconds, 32) for on, (_, url) in servers.items()}
        rps = {on: job.result()["rps"] for on, job in runs.items()}
    time.sleep(PAUSE_S)
    return {on: (rps[on] * seconds, before[on]) for on in servers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--burst", type=int, default=3, help="seconds of load per burst")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between export runs (export.interval_s)")
    parser.add_argument("--only", choices=("beside", "inside"), help="run one of the two arrangements")
    parser.add_argument("--baseline-src", help="a src folder of the code to compare with (beside), e.g. main's")
    parser.add_argument("--ports", type=int, default=18600, help="the first of 100 ports the servers may take")
    args = parser.parse_args()
    _PORTS.extend(range(args.ports, args.ports + 100))
    services = [("identity", run.IDENTITY)]
    if (run.BANKING77 / "artifacts" / "model.joblib").is_file():  # `make train` makes it
        services.append(("banking77", run.BANKING77))
    print(
        f"{args.rounds} bursts of {args.burst} s on CPU 0, export every {args.interval:g} s; CPU from /proc "
        "across each burst, its pause and the export run after it.\n"
    )
    print(
        "| service | export | server CPU us/request | extra CPU per request, all bursts (median burst) "
        "| logged / exported at the end | target |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, target in services:
            arrangements = [("beside (`shipway export --follow`)", None)]
            if args.baseline_src:
                arrangements.insert(0, ("baseline: the same beside, the code of --baseline-src", args.baseline_src))
            for how, src in arrangements if args.only in (None, "beside") else []:
                readings, logged, exported = beside(name, target, work, args, src)
                print(f"  {how} {name}: {readings}", file=sys.stderr)
                # An export run can fall in the next burst's window: the ratio of the sums is the figure.
                total = sum(e * n for _, _, e, n in readings) / sum(s * n for _, s, _, n in readings)
                median = statistics.median(e / s for _, s, e, _ in readings)
                export_us = sum(e * n for _, _, e, n in readings) / sum(n for *_, n in readings)
                _row(name, how, statistics.median(r[1] for r in readings), total, median, logged, exported)
                print(f"  {how}: export CPU {export_us:.2f} us/request", file=sys.stderr)
            if args.only in (None, "inside"):
                readings, logged, exported = inside(name, target, work, args)
                print(f"  inside {name}: {readings}", file=sys.stderr)
                per = [{on: (extra[on] - got[on][1]) / got[on][0] * 1e6 for on in got} for got, extra in readings]
                served = {on: sum(got[on][0] for got, _ in readings) for on in (True, False)}
                cpu = {on: sum(extra[on] - got[on][1] for got, extra in readings) for on in (True, False)}
                total = (cpu[True] / served[True]) / (cpu[False] / served[False]) - 1
                median = statistics.median(p[True] / p[False] - 1 for p in per)
                _row(
                    name,
                    "inside (`export.in_serve`)",
                    statistics.median(p[False] for p in per),
                    total,
                    median,
                    logged,
                    exported,
                )


def _row(name: str, how: str, server_us: float, total: float, median: float, logged: int, exported: int) -> None:
    verdict = "met" if total <= TARGET and exported == logged else "NOT met"
    print(
        f"| {name} | {how} | {server_us:.1f} | {total:.1%} ({median:.1%}) | {logged:,} / {exported:,} "
        f"| at most 5%: {verdict} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
