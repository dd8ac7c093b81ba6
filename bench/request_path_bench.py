"""What shipway's request path costs per request, part by part, in-process (issue 15).

    .venv/bin/python bench/request_path_bench.py [--runs 7] [--profile]

banking77 as `shipway serve` builds it (the App with its jobs and the dashboard mount,
prometheus_client in multiprocess mode), in one process pinned to one CPU. Each part is
called many times in a row and timed by the calling thread's CPU time; a figure is the
least of `--runs` runs (the run least disturbed by the other processes on this shared
machine) with the median beside it; the model, the pipeline and the whole request are interleaved
run by run. The parts: the bare model call that bare Starlette
makes, the pipeline on one item (the input stages, the model and its output, the rules,
the output check), the pieces of the serving layer around it, the whole request through
the ASGI interface (one caller, the next request sent when the last is answered, without
the HTTP parsing that Starlette pays too), and the prediction log's writer per entry at
the one-connection rate (0.5 s of traffic a flush). `--profile` prints a cProfile of the
whole request instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
FLUSH_ENTRIES = 366  # 0.5 s at 733 req/s, banking77's rate at one connection on a quiet machine


def _least(fn: Callable[[int], Any], n: int, runs: int) -> tuple[float, float]:
    """(least, median) over `runs` of this thread's CPU microseconds per call of fn(n) / n."""
    out = []
    for _ in range(runs):
        started = time.thread_time()
        fn(n)
        out.append((time.thread_time() - started) / n * 1e6)
    return min(out), statistics.median(out)


async def _measure(store: str, runs: int, profile: bool) -> list[tuple[str, float, float]]:
    import skops.io

    from shipway.cli.common import open_project
    from shipway.cli.monitor import alert_jobs, dashboard_mounts
    from shipway.cli.rollout import rollout_jobs
    from shipway.serving.app import App
    from shipway.serving.predict import logged_outputs

    project = open_project(str(run.BANKING77), {"store.url": store}, gated=True)
    s = project.settings
    app = App(project.service, s, project.gate, alert_jobs(s) + rollout_jobs(s), dashboard_mounts(s))
    app.preload()
    await app.startup()
    rt = app.runtime
    assert rt.live is not None and rt.metrics is not None and rt.log is not None and rt.rules is not None
    live, metrics, log, rules = rt.live, rt.metrics, rt.log, rt.rules
    pipeline = live.pipeline
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def request(i: int) -> None:
        body = BODIES[i % len(BODIES)]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers, "client": ("127.0.0.1", 1)}
        await app(scope, receive, send)

    for i in range(300):  # warm-up
        await request(i)
    await asyncio.sleep(1.1)  # past the log's first flush and the first once-a-second checks
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(2000):
            await request(i)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"shipway|banking77", 45)
        await app.shutdown()
        return []

    texts = [json.loads(b)["text"] for b in BODIES]
    items = [pipeline.input_schema.validate_json(b) for b in BODIES]
    outputs = [live.run([item])[0] for item in items]
    for output in outputs:
        pipeline.render(output)  # keeps the rendered JSON on the output, as serving does
    model = skops.io.load(run.BANKING77 / "artifacts" / "model.skops")  # as bench/stacks/ loads it

    def bare_model(n: int) -> None:
        for i in range(n):
            model.predict_proba([texts[i % 8]])

    def one_item(n: int) -> None:
        for i in range(n):
            live.run([items[i % 8]])

    def metric_updates(n: int) -> None:
        for _ in range(n):
            metrics.request("predict", 200, 0.0012)
            metrics.batch(1, [1e-5], 0.001)

    def parse(n: int) -> None:
        for i in range(n):
            pipeline.input_schema.validate_json(BODIES[i % 8])

    def render(n: int) -> None:
        for i in range(n):
            pipeline.render(outputs[i % 8])

    def log_entry(n: int) -> None:
        for i in range(n):
            out = outputs[i % 8]
            logged, decision, shadow = logged_outputs(pipeline, "on", rt.mode_decision, b"{}", out)
            log.add(rt.context, "id", 1.7e9, 1.0, 200, BODIES[i % 8], logged, decision, shadow)

    def sync(n: int) -> None:
        for _ in range(n):
            rules.sync()
            app.candidates.sync()
            app.models.sync()

    # The three long parts interleaved run by run, so that each run of them sees the same machine.
    big: dict[str, list[float]] = {}
    for _ in range(runs):
        for name, fn in (
            ("the bare model call (what Starlette runs)", bare_model),
            ("the pipeline on one item (stages, model, rules, output check)", one_item),
        ):
            big.setdefault(name, []).append(_least(fn, 300, 1)[0])
        started = time.thread_time()
        for i in range(300):
            await request(i)
        big.setdefault("the whole request through the ASGI app (event loop thread)", []).append(
            (time.thread_time() - started) / 300 * 1e6
        )
    rows = [(name, min(values), statistics.median(values)) for name, values in big.items()]
    for name, fn, n in (
        ("metrics: one request and one batch counted", metric_updates, 5000),
        ("input: parse and validate the body", parse, 5000),
        ("output: render the answer", render, 5000),
        ("the log's entry on the request path (decided answer)", log_entry, 5000),
        ("the once-a-second sync of rules, candidate, model (per second)", sync, 50),
    ):
        least, median = _least(fn, n, runs)
        rows.append((name, least, median))
    writer = []
    for _ in range(runs):
        log_entry(FLUSH_ENTRIES)
        started = time.thread_time()
        log._cycle(log._delivery)  # type: ignore[arg-type]  # what the writer thread runs a flush
        writer.append((time.thread_time() - started) / FLUSH_ENTRIES * 1e6)
    rows.append(
        (f"the log's writer, per entry, {FLUSH_ENTRIES} entries a flush", min(writer), statistics.median(writer))
    )
    assert set(statuses) == {200}, statuses
    await app.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the whole request instead")
    parser.add_argument("--pinned", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.pinned:  # again, on the servers' CPU, as the other benches pin servers
        cmd = ["taskset", "-c", run.SERVER_CPU, sys.executable, __file__, "--pinned", "--runs", str(args.runs)]
        os.execvp("taskset", cmd + (["--profile"] if args.profile else []))
    import uvloop

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp  # as `shipway serve` runs prometheus_client
        rows = uvloop.run(_measure(f"sqlite:///{tmp}/log.db", args.runs, args.profile))
    if not rows:
        return
    print(
        f"banking77 in-process, CPU {run.SERVER_CPU}; CPU microseconds of the calling thread per call, least of {args.runs} runs (median):\n"
    )
    print("| part | us per request, least | median |")
    print("|---|---:|---:|")
    for name, least, median in rows:
        print(f"| {name} | {least:,.1f} | {median:,.1f} |")


if __name__ == "__main__":
    main()
