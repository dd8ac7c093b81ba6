"""Model candidates under load (issue 19): what a shadow costs the live answers, and switching
candidates under 64 connections.

    .venv/bin/python bench/candidates_bench.py [--rounds 3] [--burst 5] [--part all|rate|saturation|switch]

banking77's service, one worker per server pinned to CPU 0 and the load on CPU 1, each server
with its own SQLite store. The candidate is a second registered version of the same trained
files (a model exactly as costly as the live one), named apart by its manifest.

- rate: a fixed request rate (an open-loop asyncio client: each request is sent at its
  scheduled time, and its latency counted from that time, so a stall is not hidden): a
  quarter of the saturating rate against a server shadowing all traffic, and half of it
  against one shadowing 10%, each beside the same service without a candidate in the same
  round; the live answers' p99 ratio, median over rounds.
- saturation: wrk at 64 connections against no candidate and shadows of 10%, 50% and 100%:
  throughput ratio, and the share of shadow work done (the rest is shed and counted).
- switch: wrk at 64 connections on a 2-worker server with the store polled every 0.2 s
  (rules.poll_s); during the load a canary of 50% starts, is promoted, a new candidate
  starts and is rolled back. For each change: failed requests, and the time from the change
  being written to every worker answering GET / at its generation.

Prints a Markdown section. The machine is shared (2 cores, 8 engineers): ratios within a
round are the figures to read; wall times are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the shared harness)

from shipway.core.artifacts import write_manifest  # noqa: E402
from shipway.registry import CandidateState, set_candidate  # noqa: E402
from shipway.store import open_store  # noqa: E402
from shipway.store.objects import ObjectStore  # noqa: E402
from shipway.store.registry import ModelVersion  # noqa: E402

BODY = b'{"text": "I am still waiting on my card?"}'
SERVICE = "banking77"


def project_copy(work: Path, poll_s: float) -> Path:
    """banking77 with its trained artifacts, and the candidate registered in its artifact folder."""
    ignore = shutil.ignore_patterns("__pycache__", "build", ".shipway")
    project = Path(shutil.copytree(run.BANKING77, work / "banking77", ignore=ignore))
    toml = project / "shipway.toml"
    toml.write_text(toml.read_text().replace("[rules]\n", f"[rules]\npoll_s = {poll_s}\n", 1))
    return project


def register(store_url: str, project: Path, name: str) -> str:
    """The project's trained files as another registered version `name`."""
    folder = project.parent / f"candidate-{name}"
    if not folder.exists():
        shutil.copytree(project / "artifacts", folder)
        fields = json.loads((folder / "manifest.json").read_text())
        fields.pop("files", None)
        write_manifest(folder, {**fields, "version": name})  # the same model, named apart
    objects = ObjectStore(project / ".shipway" / "objects")
    files = {}
    for path in sorted(folder.iterdir()):
        digest, size = objects.put(path)
        files[path.name] = {"digest": digest, "size": size}
    with open_store(store_url) as store:
        store.register_model_version(ModelVersion(name, digest=name.ljust(64, "0"), files=files))
    return name


def set_state(store_url: str, state: CandidateState) -> float:
    with open_store(store_url) as store:
        set_candidate(store, SERVICE, state)
    return time.perf_counter()


class Server:
    def __init__(self, work: Path, name: str, poll_s: float, shadow: float | None, workers: int = 1) -> None:
        self.dir = work / name
        self.dir.mkdir()
        self.project = project_copy(self.dir, poll_s)
        self.store_url = f"sqlite:///{self.dir / 'store.db'}"
        self.port = run.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        if shadow is not None:
            version = register(self.store_url, self.project, "banking77-candidate")
            set_state(self.store_url, CandidateState(version, "shadow", shadow, actor="bench"))
        cmd = run.shipway_cmd(self.project, self.port, self.dir / "store.db", "--workers", str(workers))
        self.proc = run.start(cmd, self.dir)
        run.wait_for(self.url + "/ready")

    def shadow_counts(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics").text
        counts: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("shipway_candidate_predictions_total{"):
                outcome = line.split('outcome="')[1].split('"')[0]
                counts[outcome] = counts.get(outcome, 0.0) + float(line.rsplit(" ", 1)[1])
        return counts

    def stop(self) -> None:
        run.stop(self.proc)


async def _fixed_rate(url: str, rate: float, seconds: float, connections: int) -> dict[str, float]:
    """Send POST /predict at `rate` per second for `seconds` over up to `connections` kept-alive
    connections; latency from each request's scheduled time."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST /predict HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    failures = 0

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, int(port))
        while True:
            scheduled = await queue.get()
            if scheduled is None:
                writer.close()
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                failures += 1
            latencies.append(time.perf_counter() - scheduled)

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(at)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    latencies.sort()
    return {
        "sent": n,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "failures": failures,
    }


def fixed_rate(url: str, rate: float, seconds: float, connections: int = 32) -> dict[str, float]:
    """The fixed-rate client in its own process on the load CPU."""
    cmd = [sys.executable, __file__, "--client", url, str(rate), str(seconds), str(connections)]
    out = subprocess.run(["taskset", "-c", run.LOAD_CPU, *cmd], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def part_rate(work: Path, rounds: int, burst: int) -> list[str]:
    base = Server(work, "rate-none", 1.0, None)
    full = Server(work, "rate-shadow100", 1.0, 1.0)
    tenth = Server(work, "rate-shadow10", 1.0, 0.1)
    try:
        for s in (base, full, tenth):
            run.wrk(s.url + "/predict", 2)  # warm-up
        saturating = statistics.median(run.wrk(base.url + "/predict", burst)["rps"] for _ in range(2))
        ratios: dict[str, list[float]] = {"quarter": [], "half": []}
        readings: dict[str, list[dict[str, float]]] = {}
        for r in range(rounds):
            for label, server, share in (("quarter", full, 0.25), ("half", tenth, 0.5)):
                pair = [base, server] if r % 2 == 0 else [server, base]
                got = {s.name: fixed_rate(s.url, saturating * share, burst) for s in pair}
                ratios[label].append(got[server.name]["p99"] / got[base.name]["p99"])
                for name, reading in got.items():
                    readings.setdefault(f"{label}:{name}", []).append(reading)
        shed = {s.name: s.shadow_counts() for s in (full, tenth)}
    finally:
        for s in (base, full, tenth):
            s.stop()
    lines = [
        f"Saturating rate of the service without a candidate (wrk, 64 connections): {saturating:.0f} req/s.",
        "",
        "| load | server | p50 ms | p99 ms | failed | p99 / no candidate (median of rounds) |",
        "|---|---|---|---|---|---|",
    ]
    for label, server, share in (("quarter", full, 0.25), ("half", tenth, 0.5)):
        for s in (base, server):
            rs = readings[f"{label}:{s.name}"]
            ratio = f"{statistics.median(ratios[label]):.2f}" if s is server else ""
            lines.append(
                f"| {share:.0%} of saturation ({saturating * share:.0f} req/s) | {s.name} | "
                f"{statistics.median(x['p50'] for x in rs):.2f} | {statistics.median(x['p99'] for x in rs):.2f} | "
                f"{sum(x['failures'] for x in rs):.0f} | {ratio} |"
            )
    lines.append("")
    lines.append(f"Shadow outcomes over the run (answered, failed, shed): {shed}")
    return lines


def part_saturation(work: Path, rounds: int, burst: int) -> list[str]:
    servers = [Server(work, "sat-none", 1.0, None)] + [
        Server(work, f"sat-shadow{int(share * 100)}", 1.0, share) for share in (0.1, 0.5, 1.0)
    ]
    rps: dict[str, list[float]] = {s.name: [] for s in servers}
    try:
        for s in servers:
            run.wrk(s.url + "/predict", 2)
        for r in range(rounds):
            for s in servers if r % 2 == 0 else list(reversed(servers)):
                rps[s.name].append(run.wrk(s.url + "/predict", burst)["rps"])
        counts = {s.name: s.shadow_counts() for s in servers[1:]}
    finally:
        for s in servers:
            s.stop()
    base = statistics.median(rps["sat-none"])
    lines = [
        "| server | req/s (median) | / no candidate | shadow work done (answered / offered) |",
        "|---|---|---|---|",
    ]
    for s in servers:
        med = statistics.median(rps[s.name])
        c = counts.get(s.name, {})
        offered = c.get("answered", 0) + c.get("shed", 0) + c.get("failed", 0)
        done = f"{c.get('answered', 0) / offered:.0%} of {offered:.0f}" if offered else ""
        lines.append(f"| {s.name} | {med:.0f} | {med / base:.2f} | {done} |")
    return lines


def part_switch(work: Path, burst: int) -> list[str]:
    poll = 0.2
    server = Server(work, "switch", poll, None, workers=2)
    a = register(server.store_url, server.project, "banking77-a")
    b = register(server.store_url, server.project, "banking77-b")
    steps = [
        ("canary 50% of a", CandidateState(a, "canary", 0.5, actor="bench")),
        ("promote a", CandidateState(a, "promoted", actor="bench")),
        ("canary 50% of b", CandidateState(b, "canary", 0.5, actor="bench")),
        ("roll back b", CandidateState(b, "rolled_back", reason="bench", actor="bench")),
    ]
    result: dict[str, Any] = {}
    followed: list[tuple[str, float]] = []

    def changes() -> None:
        time.sleep(2)
        for generation, (label, state) in enumerate(steps, start=1):
            written = set_state(server.store_url, state)
            seen: dict[int, float] = {}
            deadline = written + 30
            while time.perf_counter() < deadline:
                index = httpx.get(server.url + "/", headers={"connection": "close"}, timeout=5).json()
                if (index.get("candidate") or {}).get("generation") == generation:
                    seen.setdefault(index["worker"], time.perf_counter() - written)
                if len(seen) >= 2:
                    break
            followed.append((label, max(seen.values()) if len(seen) >= 2 else float("nan")))
            time.sleep(1.5)

    thread = threading.Thread(target=changes)
    try:
        thread.start()
        result = run.wrk(server.url + "/predict", max(burst, 2 + len(steps) * 3), 64)
        thread.join()
    finally:
        server.stop()
    lines = [
        f"wrk, 64 connections, {result['rps']:.0f} req/s over the run; non-2xx answers: {result['non_2xx']}, "
        f"socket errors: {result['socket_errors']}; rules.poll_s = {poll}.",
        "",
        "| change written | every worker on it after (s) |",
        "|---|---|",
    ]
    lines += [f"| {label} | {seconds:.2f} |" for label, seconds in followed]
    return lines


_HOTPATH = """
import asyncio, sys, time
from pathlib import Path
from shipway.project import Project
from shipway.serving.app import App

async def main(target, store, n):
    project = Project.load(target, {"store.url": store, "log.enabled": False})
    app = App(project)
    await app.startup()
    body = b'{"text": "I am still waiting on my card?"}'
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-length", str(len(body)).encode())]}
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}
    async def send(message):
        pass
    for _ in range(200):
        await app(scope, receive, send)
    started = time.process_time()
    for _ in range(n):
        await app(scope, receive, send)
    print((time.process_time() - started) / n * 1e6)
    await app.shutdown()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def part_hotpath(work: Path, rounds: int, builds: dict[str, str]) -> list[str]:
    """CPU time per /predict through the ASGI app in-process (one request at a time, the log
    off), for the identity service and banking77, for this build and others: CPU time, not
    wall time, so other processes on the machine matter less."""
    targets = {"identity": run.IDENTITY, "banking77": run.BANKING77}
    counts = {"identity": 2000, "banking77": 300}
    cpu: dict[tuple[str, str], list[float]] = {}
    names = ["this", *builds]
    for r in range(rounds):
        for build in names if r % 2 == 0 else list(reversed(names)):
            src = str(run.ROOT / "src") if build == "this" else builds[build]
            for label, target in targets.items():
                store = f"sqlite:///{work / f'hot-{build}-{label}-{r}.db'}"
                out = subprocess.run(
                    [
                        "taskset",
                        "-c",
                        run.SERVER_CPU,
                        sys.executable,
                        "-c",
                        _HOTPATH,
                        str(target),
                        store,
                        str(counts[label]),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONPATH": src},
                    cwd=work,
                )
                cpu.setdefault((build, label), []).append(float(out.stdout.strip().splitlines()[-1]))
    lines = ["| service | build | CPU us per request (median) | / this build (median of rounds) |", "|---|---|---|---|"]
    for label in targets:
        for build in names:
            mine, theirs = cpu[("this", label)], cpu[(build, label)]
            ratio = statistics.median(t / m for t, m in zip(theirs, mine, strict=True))
            lines.append(f"| {label} | {build} | {statistics.median(theirs):.1f} | {ratio:.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--part", default="all", choices=["all", "rate", "saturation", "switch", "hotpath"])
    parser.add_argument("--build", action="append", default=[], help="NAME=SRC: another checkout's src for hotpath")
    parser.add_argument("--client", nargs=4, help=argparse.SUPPRESS)  # URL RATE SECONDS CONNECTIONS: the load
    args = parser.parse_args()
    if args.client:
        url, rate, seconds, connections = args.client
        print(json.dumps(asyncio.run(_fixed_rate(url, float(rate), float(seconds), int(connections)))))
        return
    if not (run.BANKING77 / "artifacts" / "manifest.json").is_file():
        sys.exit("banking77 is not trained: run `make train` first")
    out: list[str] = ["## Model candidates (bench/candidates_bench.py)", ""]
    with tempfile.TemporaryDirectory(prefix="shipway-candidates-") as tmp:
        work = Path(tmp)
        if args.part in ("all", "rate"):
            out += ["### Shadow at a fixed rate: live answers' p99", "", *part_rate(work, args.rounds, args.burst), ""]
        if args.part in ("all", "saturation"):
            out += ["### Shadow at saturation: throughput", "", *part_saturation(work, args.rounds, args.burst), ""]
        if args.part in ("all", "hotpath"):
            builds = dict(b.split("=", 1) for b in args.build)
            out += ["### The request path's CPU time", "", *part_hotpath(work, args.rounds, builds), ""]
        if args.part in ("all", "switch"):
            out += ["### Canary, promotion and rollback under load", "", *part_switch(work, args.burst), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
