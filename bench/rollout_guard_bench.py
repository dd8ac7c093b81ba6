"""How long the rollout controller takes from a breached guard to the rollback written (issue 19).

    .venv/bin/python bench/rollout_guard_bench.py [--rps 50] [--window 900] [--runs 5] [--postgres URL]

Fills the guards' window with shadowed traffic written through the store's real write path
(the live answer and the candidate's `:shadow` answer per request, banking77-like outputs; the
candidate's failures counted in the rollups as serving counts them), at `--rps` requests a
second over `--window` seconds. Then, `--runs` times: starts a rollout of the candidate and
times one controller check (`Rollout.tick`) of a candidate failing a fifth of its answers: the
rollups-only comparison, the error-rate guard, and the compare-and-set that writes
`rolled_back`. Same run, same data: the first check of a healthy candidate, which also reads
the window's records (agreement and accuracy, every `rollout.deep_check_every_s`), and the
record-reading comparison alone.

The issue's figure is "from a breached guard to all traffic on the live version under 10 s".
The controller's part of it is at most `rollout.check_every_s` (the wait for the next check)
plus one check; the workers' part (following the state within `rules.poll_s`) is measured by
h19-candidates' benchmark. Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from shipway.deploy.plan import Guards, Plan, parse_steps  # noqa: E402
from shipway.deploy.rollout import Rollout  # noqa: E402
from shipway.store import PredictionRecord, Store, open_store  # noqa: E402
from shipway.store.registry import ModelVersion  # noqa: E402
from shipway.store.version_comparison import SHADOW_SUFFIX, compare_versions  # noqa: E402

LABELS = [f"intent_{i}" for i in range(77)]
LIVE, CAND = "live-1111", "cand-2222"
CHECK_EVERY_S = 2.0  # the default of rollout.check_every_s
BUDGET_S = 10.0


def fill(store: Store, service: str, start: float, rps: int, window: int, fail_share: float) -> int:
    rng = random.Random(19)
    n = rps * window
    batch: list[PredictionRecord] = []
    failures: list[PredictionRecord] = []
    for i in range(n):
        ts = start + i / rps
        rid = f"{service}-{i}"
        label = LABELS[rng.randrange(77)]
        inputs = orjson.dumps({"text": f"message {i} about {label}"})
        live = orjson.dumps({"intent": label, "probability": 0.9})
        said = label if rng.random() < 0.95 else LABELS[rng.randrange(77)]
        batch.append(PredictionRecord(rid, ts, service, LIVE, 4.0 + rng.random(), inputs, live))
        shadow = PredictionRecord(
            rid + SHADOW_SUFFIX,
            ts + 0.002,
            service,
            CAND,
            6.0 + rng.random(),
            inputs,
            orjson.dumps({"intent": said, "probability": 0.8}),
        )
        if rng.random() < fail_share:
            shadow.status = 500
            failures.append(shadow)
        else:
            batch.append(shadow)
        if len(batch) >= 20_000:
            store.write_predictions(batch)
            batch = []
    store.write_predictions(batch)
    if failures:
        store.write_rollups(failures)
    return n


def timed_checks(store: Store, service: str, plan: Plan, clock_at: float, runs: int) -> list[float]:
    rollout = Rollout(store, service, plan, actor="bench", clock=lambda: clock_at)
    seconds = []
    for _ in range(runs):
        rollout.start(CAND)
        t0 = time.perf_counter()
        decision = rollout.tick()
        seconds.append(time.perf_counter() - t0)
        if decision is None:
            rollout.abort("bench: healthy candidate, nothing to roll back")
        elif decision.action != "rolled_back":
            raise SystemExit(f"expected a rollback, got {decision.action}")
    return seconds


@contextlib.contextmanager
def _schema(base: str | None) -> Iterator[str | None]:
    """A URL to a fresh PostgreSQL schema of a unique name, dropped after; None without `base`."""
    if base is None:
        yield None
        return
    import psycopg

    schema = f"shipway_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        parts = urlsplit(base)
        query = urlencode({**dict(parse_qsl(parts.query)), "options": f"-csearch_path={schema}"})
        yield urlunsplit(parts._replace(query=query))
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rps", type=int, default=50)
    parser.add_argument("--window", type=int, default=900)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--postgres", default=None, help="A PostgreSQL URL: run there, in a schema of its own dropped after."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _schema(args.postgres) as pg_url:
        url = pg_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        steps = parse_steps([{"mode": "shadow", "duration": "1h"}, {"mode": "promote"}])
        plan = Plan(steps, Guards(window_s=float(args.window), min_requests=100), check_every_s=CHECK_EVERY_S)
        # Traffic starts after every rollout this run starts, so the window holds all of it.
        start = time.time() + 600
        clock_at = start + args.window
        with open_store(url) as store:
            for version in (LIVE, CAND):
                store.register_model_version(ModelVersion(version, version[-4:] * 16))
            t0 = time.perf_counter()
            n = fill(store, "bad", start, args.rps, args.window, fail_share=0.2)
            fill(store, "good", start, args.rps, args.window, fail_share=0.0)
            fill_s = time.perf_counter() - t0
            breached = timed_checks(store, "bad", plan, clock_at, args.runs)
            healthy = timed_checks(store, "good", plan, clock_at, args.runs)
            compare = []
            for _ in range(args.runs):
                t1 = time.perf_counter()
                compare_versions(store, "bad", CAND, since=clock_at - args.window, until=clock_at + 1)
                compare.append(time.perf_counter() - t1)
    worst = CHECK_EVERY_S + max(breached)
    print(f"## Rollout guards: from a breached guard to the rollback written ({url.split(':')[0]})\n")
    print(f"Window: {args.window} s at {args.rps} requests/s shadowed ({n:,} requests, {2 * n:,} log entries); ")
    print(f"filled in {fill_s:.1f} s. {args.runs} runs each, median (max), milliseconds.\n")
    print("| what | ms |")
    print("|---|---|")
    rows = [
        ("a check that rolls back on the error rate (rollups, guards, compare-and-set)", breached),
        ("a check of a healthy candidate that also reads the records", healthy),
        ("the comparison with the records alone", compare),
    ]
    for what, seconds in rows:
        print(f"| {what} | {1000 * statistics.median(seconds):.1f} ({1000 * max(seconds):.1f}) |")
    print(
        f"| worst case detection: check_every_s {CHECK_EVERY_S:g} s + the slowest rollback check | "
        f"{1000 * worst:.0f} ({worst / BUDGET_S:.2f} of the 10 s budget) |"
    )


if __name__ == "__main__":
    main()
