"""What shipway's request path costs per request, part by part, in-process (issue 15).

    .venv/bin/python bench/request_path_bench.py [--requests 3000] [--rounds 5] [--profile NAME]

banking77 as `shipway serve` builds it (the App, its jobs and the dashboard mount), driven
through its ASGI interface by one caller that sends the next request when the last is
answered: what one connection asks of a worker, without the HTTP parsing that bare
Starlette pays too. Each configuration runs in its own process pinned to one CPU, the
configurations interleaved round by round; a figure is the CPU time of the whole process
(every thread: the event loop, the log's writer, the rules poller, the jobs) per request,
the median over rounds. CPU time moves far less with the machine's load than req/s do.

The configurations turn off one part at a time: the prediction log, the dashboard mount,
the rules, and the background work (jobs, the rules poller), so the differences say what
each part costs; `model` is the model's own call per item (what bare Starlette runs).
`--profile NAME` prints a cProfile of that configuration's request loop instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the shared harness)

BODIES = [
    b'{"text": "I am still waiting on my card?"}',
    b'{"text": "How do I top up my account with cash?"}',
    b'{"text": "My card payment was declined at the shop"}',
    b'{"text": "Why was I charged a fee for a transfer?"}',
    b'{"text": "I think someone stole my card, please block it"}',
    b'{"text": "What exchange rate do you use for euros?"}',
    b'{"text": "Can I change my PIN at an ATM?"}',
    b'{"text": "The app says my transfer is pending"}',
]

# name: (setting overrides, with the CLI's jobs and mounts)
CONFIGS: dict[str, tuple[dict[str, Any], bool]] = {
    "as shipped": ({}, True),
    "log off": ({"log.enabled": False}, True),
    "no dashboard": ({"monitoring.dashboard": False}, True),
    "no jobs": ({}, False),
    "log off, no dashboard, no jobs": ({"log.enabled": False, "monitoring.dashboard": False}, False),
    "no rules": ({"rules.file": ""}, True),
}


async def _serve(overrides: dict[str, Any], extras: bool, n: int, store: str, profile: bool) -> dict[str, float]:
    from shipway.cli.common import open_project
    from shipway.cli.monitor import alert_jobs, dashboard_mounts
    from shipway.cli.rollout import rollout_jobs
    from shipway.serving.app import App

    project = open_project(str(run.BANKING77), {"store.url": store, **overrides}, gated=True)
    s = project.settings
    jobs = alert_jobs(s) + rollout_jobs(s) if extras else []
    app = App(project.service, s, project.gate, jobs, dashboard_mounts(s))
    app.preload()
    await app.startup()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def one(i: int) -> None:
        body = BODIES[i % len(BODIES)]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/predict",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 5000),
        }
        await app(scope, receive, send)

    for i in range(300):  # warm-up
        await one(i)
    await asyncio.sleep(1.2)  # past the log's first flush and the first once-a-second checks
    sent.clear()
    profiler = cProfile.Profile() if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for i in range(n):
        await one(i)
        if i % 50 == 0:
            await asyncio.sleep(0)  # let timers and callbacks run, as between wrk's requests
    if profiler is not None:
        profiler.disable()
    cpu_loop, wall_loop = time.process_time() - cpu, time.perf_counter() - wall
    await asyncio.sleep(1.0)  # the writer's flush of these requests counts too
    cpu_all = time.process_time() - cpu
    statuses = {m["status"] for m in sent if m["type"] == "http.response.start"}
    assert statuses == {200}, statuses
    await app.shutdown()
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(r"shipway|banking77|starlette|orjson|pydantic", 45)
    return {"cpu_us": cpu_all / n * 1e6, "loop_cpu_us": cpu_loop / n * 1e6, "wall_us": wall_loop / n * 1e6}


def _model_only(n: int) -> dict[str, float]:
    """The bare model call per item, as bench/stacks/starlette_banking77.py makes it."""
    import numpy as np
    import skops.io

    model = skops.io.load(run.BANKING77 / "artifacts" / "model.skops")  # as the Starlette stack loads it
    texts = [json.loads(b)["text"] for b in BODIES]
    cpu = time.process_time()
    for i in range(n):
        proba = model.predict_proba([texts[i % len(texts)]])[0]
        top = np.argsort(-proba)[:4]
        json.dumps({"intent": str(top[0])})
    return {"cpu_us": (time.process_time() - cpu) / n * 1e6}


def child(name: str, n: int, profile: bool) -> None:
    import uvloop

    if name == "model":
        print(json.dumps(_model_only(n)))
        return
    overrides, extras = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        # As `shipway serve` runs it: prometheus_client's multiprocess mode (memory-mapped files).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp
        store = f"sqlite:///{tmp}/log.db"
        result = uvloop.run(_serve(overrides, extras, n, store, profile))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", action="append", help="a configuration (repeatable); default: all")
    parser.add_argument("--profile", help="print a cProfile of this configuration's request loop")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, bool(args.profile))
        return
    if args.profile:
        child(args.profile, args.requests, True)
        return
    names = args.only or [*CONFIGS, "model"]
    rows: dict[str, list[dict[str, float]]] = {}
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            out = subprocess.run(
                ["taskset", "-c", run.SERVER_CPU, sys.executable, __file__, "--child", name, "--requests", str(args.requests)],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            if out.returncode != 0:
                sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
            reading = json.loads(out.stdout.strip().splitlines()[-1])
            rows.setdefault(name, []).append(reading)
            print(f"  round {round_ + 1} {name:<32} {reading}", file=sys.stderr, flush=True)
    print(f"\n{args.rounds} interleaved rounds of {args.requests} requests, one at a time, each configuration in its own process on CPU {run.SERVER_CPU}; medians:\n")
    print("| configuration | CPU us per request, all threads | event loop pass only | wall us per request |")
    print("|---|---:|---:|---:|")
    for name, values in rows.items():
        med = {k: statistics.median(v[k] for v in values) for k in values[0]}
        print(
            f"| {name} | {med['cpu_us']:.0f} | {med.get('loop_cpu_us', float('nan')):.0f} | "
            f"{med.get('wall_us', float('nan')):.0f} |"
        )


if __name__ == "__main__":
    main()
