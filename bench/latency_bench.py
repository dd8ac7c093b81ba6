"""Latency at every load (issue 15): one connection and 64, and p99 with the log on and off.

    .venv/bin/python bench/latency_bench.py [--rounds 6] [--burst 4]

Every server is started once and stays up (each pinned to CPU 0, wrk to CPU 1). A round
loads each server in turn for `--burst` seconds, at 1 connection and then at 64, the order
of the servers reversed from one round to the next. This machine is shared and its speed
drifts from one minute to the next, so each figure is the median over rounds of a ratio
taken within the round (bursts seconds apart see the same machine). Prints a Markdown
section. `--variant NAME=FLAGS` adds a shipway banking77 server with extra `shipway serve`
flags (e.g. `--variant wait0='--max-wait-ms 0'`), and `--build NAME=SRC` one running
another checkout of shipway (its `src` folder first on PYTHONPATH), to compare side by side.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the shared harness: start, stop, wrk, shipway_cmd)

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


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


Variant = tuple[list[str], dict[str, str] | None]  # extra flags, environment


def servers(work: Path, variants: dict[str, Variant]) -> dict[str, tuple[Any, Path, dict[str, str] | None]]:
    """name: (command for a port, folder, environment)."""
    banking_env = {"BANKING77_ARTIFACTS": str(run.BANKING77 / "artifacts")}
    named: dict[str, tuple[Any, Path, dict[str, str] | None]] = {
        "starlette": (lambda p: run.uvicorn_cmd("starlette_banking77:app", p), run.STACKS, banking_env),
        "banking77": (lambda p: run.shipway_cmd(run.BANKING77, p, work / f"b-on-{p}.db"), work, None),
        "banking77_off": (lambda p: run.shipway_cmd(run.BANKING77, p, work / f"b-off-{p}.db", "--no-log"), work, None),
        "identity": (lambda p: run.shipway_cmd(run.IDENTITY, p, work / f"i-on-{p}.db"), work, None),
        "identity_off": (lambda p: run.shipway_cmd(run.IDENTITY, p, work / f"i-off-{p}.db", "--no-log"), work, None),
    }
    for name, (flags, env) in variants.items():
        named[name] = (
            lambda p, flags=flags, name=name: run.shipway_cmd(run.BANKING77, p, work / f"{name}-{p}.db", *flags),
            work,
            env,
        )
    return named


# Which servers are loaded at which connection counts, by part of the bench.
PARTS = {
    "batching": ((1, ("starlette", "banking77")), (64, ("starlette", "banking77"))),
    "log": ((64, ("banking77", "banking77_off", "identity", "identity_off")),),
}


def measure(
    rounds: int, burst: int, variants: dict[str, Variant], parts: list[str]
) -> dict[tuple[str, int], list[dict[str, float]]]:
    readings: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs: dict[str, Any] = {}
        urls: dict[str, str] = {}
        try:
            plan: list[tuple[str, int]] = []
            for part in parts:
                for connections, names in PARTS[part]:
                    extra = tuple(variants) if part == "batching" else ()
                    plan += [(n, connections) for n in (*names, *extra) if (n, connections) not in plan]
            wanted = {name for name, _ in plan}
            for name, (cmd, cwd, env) in servers(work, variants).items():
                if name not in wanted:
                    continue
                port = run.free_port()
                procs[name] = run.start(cmd(port), cwd, env)
                urls[name] = f"http://127.0.0.1:{port}/predict"
            for name, url in urls.items():
                ready = url if name == "starlette" else url.replace("/predict", "/ready")
                run.wait_for(ready)
                run.wrk(url, 2)  # warm-up
            for round_ in range(rounds):
                order = plan if round_ % 2 == 0 else plan[::-1]
                for name, connections in order:
                    reading = load(urls[name], burst, connections)
                    readings.setdefault((name, connections), []).append(reading)
                    print(
                        f"  round {round_ + 1} {name:<16} c={connections:<3} {reading['rps']:>8.0f} req/s "
                        f"p50 {reading['p50']:.2f} ms p99 {reading['p99']:.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
                    time.sleep(0.5)  # the log's writer finishes the burst's entries (it flushes every 0.5 s)
        finally:
            for proc in procs.values():
                run.stop(proc)
    return readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--burst", type=int, default=4, help="seconds of load per burst")
    parser.add_argument("--variant", action="append", default=[], help="NAME=FLAGS: one more banking77 server")
    parser.add_argument("--build", action="append", default=[], help="NAME=SRC: banking77 on another checkout")
    parser.add_argument("--part", choices=("all", *PARTS), default="all", help="measure only one part")
    args = parser.parse_args()
    variants: dict[str, Variant] = {}
    for spec in args.variant:
        name, _, flags = spec.partition("=")
        variants[name] = (shlex.split(flags), None)
    for spec in args.build:
        name, _, src = spec.partition("=")
        variants[name] = ([], {"PYTHONPATH": str(Path(src).resolve())})
    parts = list(PARTS) if args.part == "all" else [args.part]
    r = measure(args.rounds, args.burst, variants, parts)
    print(render(r, args.rounds, args.burst, variants))


def median(values: Any) -> float:
    return statistics.median(list(values))


def render(
    r: dict[tuple[str, int], list[dict[str, float]]], rounds: int, burst: int, variants: dict[str, Variant]
) -> str:
    def ratio(a: str, b: str, c: int, key: str) -> float:
        return median(x[key] / y[key] for x, y in zip(r[(a, c)], r[(b, c)], strict=True))

    def med(name: str, c: int, key: str) -> float:
        return median(x[key] for x in r[(name, c)])

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [
        f"{rounds} interleaved rounds; in each, every server in turn gets a {burst} s burst from wrk "
        "(one thread, CPU 1), the order reversed every other round. "
        "The servers stay up for the whole run (each pinned to CPU 0). Each figure is the median over "
        "rounds of the ratio within a round; the machine was shared with other engineers' tests.",
        "",
        "| figure | target | measured | |",
        "|---|---|---|---|",
    ]
    if ("starlette", 1) in r:
        rps_1 = ratio("banking77", "starlette", 1, "rps")
        p50_1 = ratio("starlette", "banking77", 1, "p50")  # as a speed: above 1 is faster
        rps_64 = ratio("banking77", "starlette", 64, "rps")
        lines += [
            f"| banking77 at 1 connection, req/s vs bare Starlette | at least 0.9x | {rps_1:.2f}x "
            f"| {verdict(rps_1 >= 0.9)} |",
            f"| banking77 at 1 connection, p50 vs bare Starlette (Starlette's p50 / shipway's) | at least 0.9x "
            f"| {p50_1:.2f}x | {verdict(p50_1 >= 0.9)} |",
            f"| banking77 at 64 connections, req/s vs one-at-a-time Starlette | at least 6.5x | {rps_64:.2f}x "
            f"| {verdict(rps_64 >= 6.5)} |",
        ]
    if ("identity_off", 64) in r:
        for s in ("identity", "banking77"):
            cost = ratio(s, f"{s}_off", 64, "p99") - 1
            lines.append(
                f"| {s} at 64 connections, p99 with the log on vs off | within 15% | {cost:+.0%} "
                f"| {verdict(cost <= 0.15)} |"
            )
    lines += [
        "",
        "Medians over rounds of each server's own readings:",
        "",
        "| server | connections | req/s | p50 ms | p99 ms | non-2xx + socket errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (name, c), readings in r.items():
        errors = sum(x["errors"] for x in readings)
        lines.append(
            f"| {name} | {c} | {med(name, c, 'rps'):,.0f} | {med(name, c, 'p50'):.2f} | {med(name, c, 'p99'):.2f} "
            f"| {errors:.0f} |"
        )
    for name in variants:
        lines.append(
            f"\n{name}: at 1 connection {ratio(name, 'starlette', 1, 'rps'):.2f}x Starlette's req/s "
            f"and {ratio('starlette', name, 1, 'p50'):.2f}x its p50; at 64 connections "
            f"{ratio(name, 'starlette', 64, 'rps'):.2f}x Starlette's req/s, {ratio(name, 'banking77', 64, 'rps'):.2f}x "
            f"banking77's."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
