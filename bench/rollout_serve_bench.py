"""From a breached guard to all traffic on the live version, inside a real `shipway serve` (issue 19).

    .venv/bin/python bench/rollout_serve_bench.py [--workers 2] [--rounds 3]

Trains two models of a small text project (`shipway try tfidf-nb`, `tfidf-lr`), registers them,
serves the first with `--workers` workers and every timing setting at its default
(`rollout.check_every_s` 2 s, `rules.poll_s` 1 s, `log.flush_interval_s` 0.5 s), and starts a
rollout of the second as a canary answering half the requests, with a p99 guard no model meets.
One client sends requests until the rollback, and 3 s more.

From the store afterwards: the guard is breached when the candidate has answered
`rollout.min_requests` requests (the `min_requests`-th candidate answer's time); the rollback is
written at the state's time; all traffic is on the live version after the candidate's last
answer. Each round starts a rollout again, at the start of a minute (the guards read per-minute
rollups, so a round must not see the last one's answers). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from recipe_projects import text_project  # noqa: E402

from shipway.registry import current_candidate  # noqa: E402
from shipway.store import open_store  # noqa: E402

SHIPWAY = [sys.executable, "-m", "shipway"]
MIN_REQUESTS = 20


def _run(*args: str, cwd: Path) -> str:
    done = subprocess.run([*SHIPWAY, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"shipway {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def _register(root: Path, recipe: str, store_url: str) -> tuple[str, str]:
    _run("try", recipe, "--target", str(root), cwd=root)
    with open_store(store_url) as store:
        run = next(r for r in store.list_runs() if r.recipe == recipe)
    version = json.loads(_run("models", "register", run.id, "--target", str(root), "--json", cwd=root))["version"]
    return run.id, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rollout-serve-"))
    root = tmp / "topics"
    root.mkdir()
    text_project(root)
    store_url = f"sqlite:///{root / '.shipway' / 'shipway.db'}"
    (root / ".shipway").mkdir(exist_ok=True)
    live_run, _ = _register(root, "tfidf-nb", store_url)
    _, candidate = _register(root, "tfidf-lr", store_url)
    (root / "shipway.toml").write_text(
        f'name = "topics"\nartifacts = ".shipway/tries/{live_run}"\n\n[data]\ntarget = "category"\n\n'
        f'[deploy]\nroot = "."\n\n[serve]\nworkers = {args.workers}\n\n'
        '[rollout]\nsteps = [{mode = "canary", share = 0.5, duration = "1h"}, {mode = "promote"}]\n'
        f"min_requests = {MIN_REQUESTS}\nmax_p99_ms = 0.000001\nmax_p99_ratio = 0.0\n"
    )
    port = 20_000 + os.getpid() % 10_000
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*SHIPWAY, "serve", str(root), "--port", str(port)],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    rows = []
    failed = sent = 0
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the service did not start: {(tmp / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        with httpx.Client(timeout=30) as client, open_store(store_url) as store:
            for _ in range(args.rounds):
                # The guards' rollups are per minute: a round in a minute of its own sees only its own answers.
                time.sleep(60 - time.time() % 60 + 0.5)
                _run("rollout", "start", candidate, "--target", str(root), cwd=root)
                started = time.time()
                ended = None
                while ended is None or time.monotonic() < ended + 3:
                    reply = client.post(url + "/predict", json={"text": "refund my money please"})
                    sent += 1
                    failed += reply.status_code != 200
                    state = current_candidate(store, "topics")
                    if ended is None and state is not None and state.mode == "rolled_back":
                        ended = time.monotonic()
                time.sleep(1.5)  # the log's last flush
                answers = sorted(
                    r.ts
                    for r in store.read_predictions(service="topics", since=started)
                    if r.model_version == candidate
                )
                assert state is not None
                breach = answers[MIN_REQUESTS - 1]
                rows.append((state.changed_at - breach, answers[-1] - breach, len(answers)))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    written = [r[0] for r in rows]
    all_live = [r[1] for r in rows]
    print(f"## Rollout: from a breached guard to all traffic on the live version ({args.workers} workers)\n")
    print(f"{args.rounds} rounds, one client; {sent} requests, {failed} not answered 200.\n")
    print("| round | breach to rollback written (s) | breach to the candidate's last answer (s) | candidate answers |")
    print("|---|---|---|---|")
    for i, (w, a, n) in enumerate(rows, 1):
        print(f"| {i} | {w:.2f} | {a:.2f} | {n} |")
    print(f"| median | {statistics.median(written):.2f} | {statistics.median(all_live):.2f} | |")
    print(
        f"\nWorst breach to all traffic on the live version: {max(all_live):.2f} s ({max(all_live) / 10:.2f} of 10 s)."
    )


if __name__ == "__main__":
    main()
