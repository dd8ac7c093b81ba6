"""Nothing answered is lost without a count (issue 15): store and spool unwritable under load.

    .venv/bin/python bench/log_accounting_bench.py [--requests 3000] [--workers 2] [--clients 16]

A copy of the identity service is served by `shipway serve` on 127.0.0.1 with a SQLite store
and a spool whose folder cannot be created (a file stands where the folder should be), so
neither takes a record. `--requests` predictions are sent (by `--clients` threads, each on
its own connection) and the answers counted. The worker's gauges are read from /metrics.
Then the file is removed, as an operator would fix the disk, and the script waits until
every answered record is written or counted as dropped, stops the server with SIGTERM,
and counts what the store holds: rows of `predictions` and the sum of `log_drops`.
To measure a baseline, run the script with PYTHONPATH set to that build's `src` (the
server inherits it). Bounded: at most `--requests` requests and `--timeout` seconds of waiting. Prints a Markdown
section; the figure is answered minus (logged plus dropped), which must be 0.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the shared harness: start, stop, wait_for, free_port)

IDENTITY = BENCH.parent / "tests" / "services" / "identity" / "service.py"


def send(url: str, n: int, clients: int) -> int:
    """`n` predictions over `clients` connections; how many were answered 200."""
    answered = [0] * clients
    per = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]

    def client(i: int) -> None:
        with httpx.Client(timeout=30) as http:
            for k in range(per[i]):
                r = http.post(url, json={"text": f"client {i} request {k}"})
                answered[i] += r.status_code == 200

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(answered)


def gauges(base: str) -> dict[str, float]:
    """The prediction-log gauges of /metrics, by state (summed over workers)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for state, value in re.findall(r'shipway_prediction_log_records\{[^}]*state="(\w+)"[^}]*\} ([0-9.e+]+)', text):
        found[state] = found.get(state, 0.0) + float(value)
    return found


def counts(db: Path) -> tuple[int, int]:
    """Rows logged, and records counted as dropped, in the store."""
    with sqlite3.connect(db) as conn:
        logged = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
        try:
            dropped = conn.execute("SELECT COALESCE(SUM(n), 0) FROM log_drops").fetchone()[0]
        except sqlite3.OperationalError:  # a shipway before schema 5 (a baseline run) has no log_drops
            dropped = 0
    return int(logged), int(dropped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=60.0, help="longest wait for the records after the fix")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shipway-accounting-") as tmp:
        work = Path(tmp)
        project = work / "identity"
        project.mkdir()
        (project / "service.py").write_text(IDENTITY.read_text())
        blocker = work / "disk"
        blocker.write_text("a file where the store's and the spool's folder should be")
        (project / "shipway.toml").write_text(f'name = "identity"\n\n[log]\nspool_dir = "{blocker / "spool"}"\n')
        db = blocker / "shipway.db"
        port = run.free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [str(run.BIN / "shipway"), "serve", str(project), "--port", str(port), "--store", f"sqlite:///{db}"]
        proc = run.start([*cmd, "--workers", str(args.workers)], work)
        try:
            run.wait_for(f"{base}/ready")
            started = time.perf_counter()
            answered = send(f"{base}/predict", args.requests, args.clients)
            seconds = time.perf_counter() - started
            time.sleep(1.5)  # the workers' gauges refresh every second
            during = gauges(base)
            blocker.unlink()  # the operator fixes the disk
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                g = gauges(base)
                if g.get("written", 0) + g.get("replayed", 0) + g.get("dropped", 0) >= answered:
                    break
                time.sleep(0.5)
        finally:
            run.stop(proc)
        logged, dropped = counts(db)

    print("## Nothing answered is lost without a count (issue 15)\n")
    print(
        f"`.venv/bin/python bench/log_accounting_bench.py --requests {args.requests} --workers {args.workers} "
        f"--clients {args.clients}`: the identity service, SQLite store and spool both unwritable "
        f"while {args.requests} predictions are sent ({seconds:.1f} s), then the disk fixed.\n"
    )
    print("| answered | held while unwritable | dropped (gauge) | logged | counted in log_drops | unaccounted |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {answered} | {int(during.get('held', 0))} | {int(during.get('dropped', 0))} | {logged} | {dropped} "
        f"| {answered - logged - dropped} |"
    )


if __name__ == "__main__":
    main()
