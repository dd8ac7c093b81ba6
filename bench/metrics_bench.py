"""Dashboard metrics over 10 million logged predictions (issue 6).

    .venv/bin/python bench/metrics_bench.py [--predictions 10000000] [--feedback-share 0.1]

Fills a SQLite store through the same write path the prediction log uses
(segments and rollups; 30 days of traffic from two model versions and two rules
versions, a tenth of it with a label joined later), then times each query
behind the dashboard, several times, median reported. Baseline, same run: the
same counts and latency quantiles computed by GROUP BY over a table holding one
row per prediction (the layout before rollups), on a 1-million-row sample,
scaled to 10 million (the scan is linear). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from shipway.monitoring.metrics.online import online_metrics, recent_predictions  # noqa: E402
from shipway.store import PredictionRecord, open_store  # noqa: E402
from shipway.store.outcomes import describe_fields, parse_feedback  # noqa: E402

LABELS = [f"intent_{i}" for i in range(77)]
DAY = 86400
TARGET_S = 1.0


def generate(store_url: str, n: int, share: float, now: float) -> tuple[float, float]:
    rng = random.Random(6)
    start = now - 30 * DAY
    step = 30 * DAY / n
    batch, feedback = [], []
    t0 = time.perf_counter()
    with open_store(store_url) as store:
        for i in range(n):
            ts = start + i * step
            top = LABELS[rng.randrange(77)]
            outputs = {
                "intent": top,
                "probability": round(rng.random(), 3),
                "alternatives": [{"intent": LABELS[(i * 7) % 77]}],
            }
            batch.append(
                PredictionRecord(
                    request_id=f"r{i:09d}",
                    ts=ts,
                    service="banking77",
                    model_version="m-1" if i < n // 2 else "m-2",
                    latency_ms=rng.lognormvariate(1.5, 0.6),
                    inputs=b'{"text":"I still have not received my card"}',
                    outputs=orjson.dumps(outputs),
                    rules_version="routing-1" if i % 3 else "routing-2",
                    decision=b'{"queue":"urgent","review":false,"fired":["urgent-cards"]}' if i % 5 == 0 else None,
                )
            )
            if rng.random() < share:
                feedback.append(
                    {"request_id": f"r{i:09d}", "label": top if rng.random() < 0.85 else LABELS[0], "ts": ts + 3600}
                )
            if len(batch) == 5000:
                store.write_predictions(batch)
                batch = []
        if batch:
            store.write_predictions(batch)
        written = time.perf_counter() - t0
        t1 = time.perf_counter()
        describe = describe_fields()
        for k in range(0, len(feedback), 50_000):
            store.write_feedback(parse_feedback(feedback[k : k + 50_000]), describe)
        return written, time.perf_counter() - t1


def timed(fn, repeats: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def baseline(path: Path, rows: int, now: float) -> float:
    """Hourly counts and p99 latency per model over 7 days, by GROUP BY over one row per prediction."""
    rng = random.Random(6)
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE predictions (id INTEGER PRIMARY KEY, ts REAL, model_version TEXT, latency_ms REAL, status INTEGER, decision TEXT)"
    )
    conn.execute("CREATE INDEX predictions_ts ON predictions (ts)")
    start = now - 30 * DAY
    conn.executemany(
        "INSERT INTO predictions (ts, model_version, latency_ms, status, decision) VALUES (?, ?, ?, 200, ?)",
        (
            (start + i * 30 * DAY / rows, "m-1" if i < rows // 2 else "m-2", rng.lognormvariate(1.5, 0.6), None)
            for i in range(rows)
        ),
    )
    conn.commit()

    def query() -> None:
        since = now - 7 * DAY
        conn.execute(
            "SELECT CAST(ts / 3600 AS INTEGER), model_version, COUNT(*), AVG(latency_ms) FROM predictions "
            "WHERE ts >= ? GROUP BY 1, 2",
            (since,),
        ).fetchall()
        # p99 per hour and model: sort the latencies of each group (what a row layout must do).
        conn.execute(
            "SELECT CAST(ts / 3600 AS INTEGER), model_version, latency_ms FROM predictions WHERE ts >= ? "
            "ORDER BY 1, 2, 3",
            (since,),
        ).fetchall()

    return timed(query, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=10_000_000)
    parser.add_argument("--feedback-share", type=float, default=0.1)
    parser.add_argument("--baseline-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/store.db"
        written, joined = generate(url, args.predictions, args.feedback_share, now)
        describe = describe_fields()
        queries = {
            "7 days, hourly, per model version (dashboard default)": lambda s: online_metrics(
                s, "banking77", since=now - 7 * DAY, until=now, step_s=3600, by="model_version"
            ),
            "30 days, daily, per rules version": lambda s: online_metrics(
                s, "banking77", since=now - 30 * DAY, until=now, step_s=DAY, by="rules_version"
            ),
            "24 hours, every 5 minutes": lambda s: online_metrics(
                s, "banking77", since=now - DAY, until=now, step_s=300
            ),
            "15 minutes, every minute (an alert's window)": lambda s: online_metrics(
                s, "banking77", since=now - 900, until=now, step_s=60
            ),
            "slowest 20 of the last hour": lambda s: recent_predictions(
                s, "banking77", since=now - 3600, limit=20, describe=describe
            ),
            "least confident 20 of the last hour": lambda s: recent_predictions(
                s, "banking77", since=now - 3600, limit=20, order="uncertain", describe=describe
            ),
        }
        results = {}
        with open_store(url) as store:
            for name, query in queries.items():
                results[name] = timed(lambda q=query: q(store))
            check = online_metrics(store, "banking77", since=now - 31 * DAY, until=now + 60, step_s=DAY)
        base = baseline(Path(tmp) / "rows.db", args.baseline_rows, now) * args.predictions / args.baseline_rows
    worst = max(results.values())
    print(
        f"{args.predictions:,} predictions over 30 days in SQLite (segments and rollups), "
        f"{int(check.totals['labelled']):,} with a label; written in {written:.0f} s through the store's write path, "
        f"labels joined in {joined:.0f} s (the first join indexes the request ids of every segment).\n"
    )
    print("| query | median time | target | verdict |")
    print("|---|---|---|---|")
    for name, seconds in results.items():
        print(
            f"| {name} | {seconds * 1000:.0f} ms | under {TARGET_S:.0f} s | {'met' if seconds < TARGET_S else 'NOT met'} |"
        )
    print(
        f"\nBaseline in the same run: hourly counts and p99 latency per model over 7 days by GROUP BY over one "
        f"row per prediction (the layout before rollups): {base:.1f} s for {args.predictions:,} rows "
        f"(measured on {args.baseline_rows:,} and scaled linearly); the rollups answer the same in "
        f"{results['7 days, hourly, per model version (dashboard default)'] * 1000:.0f} ms with feedback, "
        f"calibration and per-class figures besides: {base / results['7 days, hourly, per model version (dashboard default)']:.0f}x faster. "
        f"Slowest query: {worst * 1000:.0f} ms."
    )
    assert check.totals["requests"] == args.predictions, check.totals["requests"]


if __name__ == "__main__":
    main()
