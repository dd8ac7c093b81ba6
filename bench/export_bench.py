"""The Parquet export's cost beside and inside a saturated service (issue 20): CPU per request.

    .venv/bin/python bench/export_bench.py [--rounds 6] [--burst 3] [--interval 10] [--only inside]

Beside: one `shipway serve` of a service (log on, SQLite) is pinned to CPU 0 and saturated by
wrk (CPU 1, 64 connections) in bursts; `shipway export --follow` runs beside it for the whole
time, exporting every `--interval` seconds into Parquet. Each round reads both process
groups' CPU time (user plus system, from /proc) across a burst and the pause after it, so
the writer's and the export's work on the burst's records is charged to the burst. The
export's CPU per request over the server's is the extra CPU per request the export costs.

At once (the fair comparison): servers of the same service on CPU 0, loaded at once by one wrk
each on CPU 1, so that all see the same machine to the millisecond: off (no export: the
baseline), inside (`export.in_serve = true`, every `--interval` seconds), beside (a plain server
and `shipway export --follow` in its own process, its CPU counted with the server's) and, with
--baseline-src, inside with that code. The extra CPU per request of each is its CPU per request
over off's: this counts what the export costs the server it shares the core with (caches, the
GIL), which the first arrangement does not see (`--only inside` runs this one alone). It also
prints the export's own CPU per request: the exporter process's beside, and inside the worker's
`shipway-jobs` thread's, found with `py-spy dump` (`pip install py-spy`; without it, not shown).
At the end each export must hold every logged prediction (it kept up). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
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


def at_once(
    name: str, target: Path, work: Path, args: argparse.Namespace
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, tuple[int, int]], dict[str, float]]:
    """Servers of the same service loaded at once on CPU 0, so that all see the same machine to
    the millisecond: off (no export, the baseline), inside (`export.in_serve`), beside (a plain
    server and `shipway export --follow` in its own process, its CPU added to the server's) and,
    with --baseline-src, inside with that code. Each arm's requests and CPU seconds per round."""
    toml = f"\n[export]\nin_serve = true\ninterval_s = {args.interval}\n"
    arms: dict[str, tuple[str, str | None]] = {"off": ("", None), "inside": (toml, None), "beside": ("", None)}
    if args.baseline_src:
        arms["inside, baseline code"] = (toml, args.baseline_src)
    groups: dict[str, list[Any]] = {}  # arm -> its process groups (server, exporter)
    urls: dict[str, str] = {}
    dbs: dict[str, tuple[Path, Path]] = {}
    try:
        for arm, (extra, src) in arms.items():
            folder = _copy(target, work, f"at-once-{name}-{arm.replace(' ', '').replace(',', '-')}", extra)
            port = _port()
            db = work / f"{folder.name}.db"
            env = {"PYTHONPATH": src} if src else None
            proc = run.start(run.shipway_cmd(folder, port, db), work, env)
            print(f"  {arm}: pid {proc.pid} port {port}", file=sys.stderr)
            groups[arm], urls[arm] = [proc], f"http://127.0.0.1:{port}/predict"
            dbs[arm] = (db, folder / ".shipway" / "export")
        for url in urls.values():
            run.wait_for(url.replace("/predict", "/ready"))
            run.wrk(url, 2)  # warm-up
        exporter = run.start(
            [
                *(str(run.BIN / "shipway"), "export", str(work / f"at-once-{name}-beside"), "--store"),
                *(f"sqlite:///{dbs['beside'][0]}", "--follow", "--interval", str(args.interval)),
            ],
            work,
        )
        groups["beside"].append(exporter)
        time.sleep(PAUSE_S + args.interval)  # the first export run (and its imports) before measuring
        thread = _jobs_thread(groups["inside"][0].pid)
        readings: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
        own: dict[str, float] = {"inside": 0.0, "beside": 0.0}  # the export's own CPU seconds
        connections = max(8, 64 // len(arms))
        for _ in range(args.rounds):
            before = {arm: _cpu(procs) for arm, procs in groups.items()}
            own_before = {"inside": _thread_cpu(thread), "beside": group_cpu_seconds(exporter.pid)}
            with ThreadPoolExecutor(len(arms)) as pool:
                runs = {arm: pool.submit(run.wrk, url, args.burst, connections) for arm, url in urls.items()}
                served = {arm: job.result()["rps"] * args.burst for arm, job in runs.items()}
            time.sleep(PAUSE_S + args.interval)  # the export's run over the burst's records
            for arm, procs in groups.items():
                readings[arm].append((served[arm], _cpu(procs) - before[arm]))
            own["inside"] += _thread_cpu(thread) - own_before["inside"]
            own["beside"] += group_cpu_seconds(exporter.pid) - own_before["beside"]
        time.sleep(PAUSE_S + 2 * args.interval)
        counts = {arm: _counts(db, export) for arm, (db, export) in dbs.items() if arm != "off"}
    finally:
        for procs in groups.values():
            for proc in reversed(procs):
                run.stop(proc)
    if thread is None:
        del own["inside"]
    return readings, counts, own


def _cpu(procs: list[Any]) -> float:
    return sum(group_cpu_seconds(proc.pid) for proc in procs)


def _jobs_thread(pgid: int) -> str | None:
    """The /proc path of the `shipway-jobs` thread (the export's, with export.in_serve) of the
    server whose process group is `pgid`, found by its Python name with `py-spy dump`; None
    without py-spy (`pip install py-spy`)."""
    spy = shutil.which("py-spy") or (str(run.BIN / "py-spy") if (run.BIN / "py-spy").is_file() else None)
    if spy is None:
        return None
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry.isdigit() and int(fields[2]) == pgid and int(entry) != pgid:  # a worker, not the arbiter
            dump = subprocess.run([spy, "dump", "--pid", entry], capture_output=True, text=True).stdout
            found = re.search(r'Thread (\d+) \([a-z]+\): "shipway-jobs"', dump)
            if found:
                return f"/proc/{entry}/task/{found.group(1)}/stat"
    return None


def _thread_cpu(path: str | None) -> float:
    if path is None:
        return 0.0
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
                readings, counts, own = at_once(name, target, work, args)
                print(f"  at once {name}: {readings}", file=sys.stderr)
                for arm, seconds in own.items():  # the export itself, and the rest of the extra
                    n = sum(n for n, _ in readings[arm])
                    print(
                        f"  {arm}: the export's own CPU {seconds / n * 1e6:.2f} us/request "
                        f"({'the shipway-jobs thread' if arm == 'inside' else 'the exporter process'})",
                        file=sys.stderr,
                    )
                off = readings["off"]
                per_off = [cpu / n * 1e6 for n, cpu in off]
                cpu_off = sum(cpu for _, cpu in off) / sum(n for n, _ in off)
                print(
                    f"| {name} | off (no export), loaded at once with the others | {statistics.median(per_off):.1f} | | | |"
                )
                for arm, got in readings.items():
                    if arm == "off":
                        continue
                    total = (sum(cpu for _, cpu in got) / sum(n for n, _ in got)) / cpu_off - 1
                    median = statistics.median(
                        (cpu / n) / (cpu_o / n_o) - 1 for (n, cpu), (n_o, cpu_o) in zip(got, off, strict=True)
                    )
                    label = {
                        "inside": "inside (`export.in_serve`)",
                        "beside": "beside (`shipway export --follow`)",
                    }.get(arm, arm)
                    per = statistics.median(cpu / n * 1e6 for n, cpu in got)
                    _row(name, f"{label}, at once with off", per, total, median, *counts[arm])


def _row(name: str, how: str, server_us: float, total: float, median: float, logged: int, exported: int) -> None:
    verdict = "met" if total <= TARGET and exported == logged else "NOT met"
    print(
        f"| {name} | {how} | {server_us:.1f} | {total:.1%} ({median:.1%}) | {logged:,} / {exported:,} "
        f"| at most 5%: {verdict} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
