"""What a worker killed with SIGKILL takes with it (issue 15): answered predictions never logged.

    .venv/bin/python bench/kill_bench.py [--rounds 3] [--duration 6] [--workers 2] [--flush 0.5,0.1]

For each log.flush_interval_s in `--flush` (the rounds interleave them), a copy of the identity
service is served by `shipway serve` on 127.0.0.1 with a SQLite store (CPU 0), and 64 client
threads (CPU 1, one connection each) load it for `--duration` seconds. Halfway through, one worker is killed with SIGKILL;
gunicorn starts another. After the load the server is stopped with SIGTERM (which loses
nothing), and the script compares the answers the clients received (status 200) with the rows
of `predictions`. The difference is what the kill lost; divided by the
killed worker's share of the throughput it is the window, in seconds of that worker's traffic.

What a shorter interval costs: with `--cost-rounds N`, one single-worker server per interval
runs side by side and all are loaded at once (wrk, 32 connections each, 3 s, as the logging
bench's `together`), N times; reported is each one's CPU time per request (its process group,
from /proc) and its ratio to the first interval's, median over the rounds.
Bounded: `--rounds` times the number of intervals runs of `--duration` seconds each, and
`--cost-rounds` bursts of 3 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import logging_bench  # noqa: E402  (together: servers loaded at once, CPU per request)
import run  # noqa: E402  (the shared harness: start, stop, wait_for, free_port)

IDENTITY = BENCH.parent / "tests" / "services" / "identity" / "service.py"


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry))
    return found


def load(port: int, seconds: float, connections: int) -> int:
    """Answers received (status 200) by `connections` client threads posting for `seconds`, each
    on a keep-alive connection of its own (plain sockets: an HTTP client library would be the
    bottleneck). Unlike wrk, which drops what is in flight when its time is up (answered and
    logged by the server, never counted by wrk), each thread waits for its last answer."""
    body = b'{"text": "I am still waiting on my card?"}'
    request = (
        b"POST /predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answered = [0] * connections
    start = threading.Barrier(connections + 1)
    end = [0.0]

    def client(i: int) -> None:
        sock: socket.socket | None = None
        start.wait()
        while time.monotonic() < end[0]:
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port))
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(request)
                answered[i] += _read_response(sock) == 200
            except OSError:  # the connection was to the killed worker: not answered
                if sock is not None:
                    sock.close()
                sock = None
        if sock is not None:
            sock.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    end[0] = time.monotonic() + seconds
    start.wait()
    for t in threads:
        t.join()
    return sum(answered)


def _read_response(sock: socket.socket) -> int:
    """The status of one whole response; OSError when the connection closes first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed before the answer")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed in the middle of the answer")
        rest += chunk
    return int(head.split(b" ", 2)[1])


def serve(work: Path, flush: float, workers: int, writer: str = "") -> tuple[subprocess.Popen[bytes], int, Path]:
    """A copy of the identity service with this flush interval (and log.writer, if given):
    (process, port, store file)."""
    project = work / f"identity-{time.time_ns()}"
    project.mkdir()
    (project / "service.py").write_text(IDENTITY.read_text())
    where = f'writer = "{writer}"\n' if writer else ""
    (project / "shipway.toml").write_text(f'name = "identity"\n\n[log]\nflush_interval_s = {flush}\n{where}')
    db = project / "store.db"
    port = run.free_port()
    cmd = [str(run.BIN / "shipway"), "serve", str(project), "--port", str(port), "--store", f"sqlite:///{db}"]
    return run.start([*cmd, "--workers", str(workers)], work), port, db


def cost(work: Path, flushes: list[float], rounds: int) -> dict[float, list[float]]:
    """CPU microseconds per request of each interval's server, all loaded at once, per round."""
    servers = {flush: serve(work, flush, 1) for flush in flushes}
    readings: dict[float, list[float]] = {flush: [] for flush in flushes}
    try:
        for _, port, _ in servers.values():
            run.wait_for(f"http://127.0.0.1:{port}/ready")
            run.wrk(f"http://127.0.0.1:{port}/predict", 2)  # warm-up
        targets = {flush: (proc.pid, f"http://127.0.0.1:{port}/predict") for flush, (proc, port, _) in servers.items()}
        for _ in range(rounds):
            for flush, (_, us) in logging_bench.together(targets, 3).items():  # type: ignore[arg-type]
                readings[flush].append(us)
    finally:
        for proc, _, _ in servers.values():
            run.stop(proc)
    return readings


def one_run(work: Path, flush: float, args: argparse.Namespace) -> tuple[int, int]:
    """(answered, logged) for one server whose worker is killed mid-load."""
    proc, port, db = serve(work, flush, args.workers, args.writer)
    try:
        run.wait_for(f"http://127.0.0.1:{port}/ready")
        time.sleep(1.0)  # every worker up and warm
        answered: list[int] = []
        loader = threading.Thread(target=lambda: answered.append(load(port, args.duration, args.connections)))
        loader.start()
        time.sleep(args.duration / 2)
        workers = children(proc.pid)
        os.kill(workers[0], signal.SIGKILL)
        loader.join()
    finally:
        run.stop(proc)
    with sqlite3.connect(db) as conn:
        logged = int(conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
    return answered[0], logged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6, help="seconds of load per run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--flush", default="0.5", help="log.flush_interval_s values, comma-separated")
    parser.add_argument("--cost-rounds", type=int, default=0, help="rounds of the side-by-side CPU cost")
    parser.add_argument("--writer", choices=("process", "thread"), help="log.writer (default: the build's)")
    args = parser.parse_args()
    flushes = [float(f) for f in args.flush.split(",")]
    os.sched_setaffinity(0, {int(run.LOAD_CPU)})  # the clients; the servers run on CPU 0
    results: dict[float, list[tuple[int, int]]] = {f: [] for f in flushes}
    with tempfile.TemporaryDirectory(prefix="shipway-kill-") as tmp:
        for i in range(args.rounds):
            for flush in flushes if i % 2 == 0 else reversed(flushes):
                answered, logged = one_run(Path(tmp), flush, args)
                results[flush].append((answered, logged))
                print(f"  flush {flush} s: answered {answered}, logged {logged}", file=sys.stderr)
        cpu = cost(Path(tmp), flushes, args.cost_rounds) if args.cost_rounds else {}
    print("## A worker killed with SIGKILL (issue 15)\n")
    print(
        f"`.venv/bin/python bench/kill_bench.py --rounds {args.rounds} --duration {args.duration} "
        f"--workers {args.workers} --flush {args.flush}"
        f"{' --writer ' + args.writer if args.writer else ''}`: the identity service, {args.workers} workers, "
        f"{args.connections} client threads for {args.duration} s, one worker killed halfway.\n"
    )
    print("| log.flush_interval_s | answered | logged | lost (each run) | window, s of the killed worker's traffic |")
    print("|---|---|---|---|---|")
    for flush, runs in results.items():
        if not runs:
            continue
        lost = [a - logged for a, logged in runs]
        rate = [a / args.duration / args.workers for a, _ in runs]  # one worker's answers per second
        window = [n / r for n, r in zip(lost, rate, strict=True)]
        print(
            f"| {flush} | {statistics.median(a for a, _ in runs):,.0f} | {statistics.median(lg for _, lg in runs):,.0f} "
            f"| {', '.join(map(str, lost))} | median {statistics.median(window):.2f}, most {max(window):.2f} |"
        )

    if cpu:
        first = cpu[flushes[0]]
        print(
            f"\nCPU per request, one single-worker server per interval loaded at once ({args.cost_rounds} rounds "
            f"of 3 s, wrk with 32 connections each; medians):\n"
        )
        print(f"| log.flush_interval_s | CPU us/request | against {flushes[0]} s |")
        print("|---|---|---|")
        for flush, us in cpu.items():
            ratio = statistics.median(u / f for u, f in zip(us, first, strict=True))
            print(f"| {flush} | {statistics.median(us):.1f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
