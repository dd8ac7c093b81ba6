"""Binary-score metrics over 30 days of outcomes: the rollups against reading every outcome.

    .venv/bin/python bench/outcome_metrics_bench.py [--n 200000] [--rounds 5]

Writes `n` score predictions over 30 days into a fresh SQLite store, joins a 0/1 label to
each (timed: the join now also keeps feedback_scores and feedback_ranks), then times the
30-day metrics (`online_metrics`, which reads the daily rollups) against the baseline of
reading every joined outcome and calling scikit-learn's roc_auc_score, average_precision_score,
brier_score_loss and log_loss on them. Prints JSON. With `--write-only` it only times the join,
so that the same script run with an older shipway on PYTHONPATH gives the join's baseline.
`series_ms` times the binary metrics per day (`kind_series`, which `online_metrics` now also
computes), beside `all_metrics_ms`, the whole call.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from sklearn import metrics as sk

from shipway.store import PredictionRecord, open_store
from shipway.store.outcomes import describe_fields, parse_feedback

DAY = 86400.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write-only", action="store_true")
    args = parser.parse_args()
    rng = random.Random(1)
    now = time.time()
    since = now - 30 * DAY
    labels = [int(rng.random() < 0.4) for _ in range(args.n)]
    scores = [min(1.0, max(0.0, rng.gauss(0.35 + 0.3 * y, 0.2))) for y in labels]
    describe = describe_fields()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with open_store(url) as store:
            step = 30 * DAY / args.n
            for k in range(0, args.n, 1000):  # segments of a second or so of traffic, as the log writes them
                store.write_predictions(
                    [
                        PredictionRecord(
                            request_id=f"r{i}",
                            ts=since + i * step,
                            service="svc",
                            model_version="m-1",
                            latency_ms=1.0,
                            inputs=b"{}",
                            outputs=orjson.dumps({"score": scores[i]}),
                        )
                        for i in range(k, min(args.n, k + 1000))
                    ]
                )
            feedback = [{"request_id": f"r{i}", "label": y} for i, y in enumerate(labels)]
            started = time.perf_counter()
            for k in range(0, args.n, 50_000):
                store.write_feedback(parse_feedback(feedback[k : k + 50_000]), describe)
            joined_s = time.perf_counter() - started
            result: dict[str, object] = {"n": args.n, "join_s": round(joined_s, 2)}
            if not args.write_only:
                from shipway.monitoring.metrics.online import kind_metrics, kind_series, online_metrics

                rollup, naive, kind, series, series_cpu, kind_cpu = [], [], [], [], [], []
                for _ in range(args.rounds):
                    t, c = time.perf_counter(), time.process_time()
                    kind_series(store, "svc", since, now, 86400, "binary", describe)
                    series.append(time.perf_counter() - t)
                    series_cpu.append(time.process_time() - c)
                    t, c = time.perf_counter(), time.process_time()
                    kind_metrics(store, "svc", since, now, describe, ())
                    kind.append(time.perf_counter() - t)
                    kind_cpu.append(time.process_time() - c)
                    t = time.perf_counter()
                    totals = online_metrics(
                        store, "svc", since=since, until=now, step_s=86400, describe=describe
                    ).totals
                    rollup.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    rows = store._query(
                        "SELECT confidence, number FROM feedback WHERE service = ? AND name = 'label' "
                        "AND pred_ts >= ? AND pred_ts < ?",
                        ["svc", since, now],
                    )
                    p = np.array([r[0] for r in rows])
                    y = np.array([r[1] for r in rows])
                    exact = {
                        "roc_auc": sk.roc_auc_score(y, p),
                        "pr_auc": sk.average_precision_score(y, p),
                        "brier": sk.brier_score_loss(y, p),
                        "log_loss": sk.log_loss(y, p),
                    }
                    naive.append(time.perf_counter() - t)
                b = totals["binary"]
                result.update(
                    all_metrics_ms=round(1000 * statistics.median(rollup), 1),
                    series_ms=round(1000 * statistics.median(series), 1),
                    series_cpu_ms=round(1000 * statistics.median(series_cpu), 1),
                    rollup_cpu_ms=round(1000 * statistics.median(kind_cpu), 1),
                    rollup_ms=round(1000 * statistics.median(kind), 1),
                    naive_ms=round(1000 * statistics.median(naive), 1),
                    speedup=round(statistics.median(naive) / statistics.median(kind), 1),
                    roc_auc=(b["roc_auc"], exact["roc_auc"], b["auc_bound"]),
                    pr_auc=(b["pr_auc"], exact["pr_auc"]),
                    brier=(b["brier"], exact["brier"]),
                    log_loss=(b["log_loss"], exact["log_loss"]),
                )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
