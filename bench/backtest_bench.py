"""Backtest 1,000,000 logged predictions of the banking77 router: rules.yaml against
rules-proposed.yaml, read from a SQLite store, the way `shipway rules backtest` runs it.

    .venv/bin/python bench/backtest_bench.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from shipway.experiments.backtest import backtest
from shipway.rules.lifecycle import labels_from_manifest
from shipway.store import PredictionRecord, open_store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"
sys.path.insert(0, str(EXAMPLE))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    import service  # the example's service.py: its schemas check the rules
    from pydantic import TypeAdapter

    from shipway.rules import load_rules
    from shipway.rules.live import META_SCHEMA

    labels = labels_from_manifest(EXAMPLE / "artifacts") or json.loads(
        (EXAMPLE / "data" / "categories.json").read_text()
    )
    schemas = {
        "input_schema": TypeAdapter(service.Message).json_schema(),
        "output_schema": TypeAdapter(service.Intent).json_schema(),
        "labels": labels,
        "meta_schema": META_SCHEMA,
    }
    current = load_rules(EXAMPLE / "rules.yaml", **schemas)
    proposed = load_rules(EXAMPLE / "rules-proposed.yaml", **schemas)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        started = time.perf_counter()
        batch = []
        for i in range(args.rows):
            intent = rng.choice(labels)
            p = round(rng.random(), 4)
            batch.append(
                PredictionRecord(
                    request_id=f"r{i}",
                    ts=1_700_000_000 + i * 0.01,
                    service="banking77",
                    model_version="m",
                    latency_ms=1.0,
                    inputs=b'{"text":"I am still waiting on my card?"}',
                    outputs=json.dumps(
                        {
                            "intent": intent,
                            "probability": p,
                            "alternatives": [{"intent": rng.choice(labels), "probability": round(p / 2, 4)}],
                        }
                    ).encode(),
                    rules_version=current.version,
                )
            )
            if len(batch) == 50_000:
                store.write_predictions(batch)
                batch = []
        if batch:
            store.write_predictions(batch)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        report = backtest(store.iter_predictions(service="banking77"), current, proposed)
        seconds = time.perf_counter() - started
        store.close()
    result = {
        "rows": report.total,
        "changed": report.changed,
        "seconds": round(seconds, 2),
        "rows_per_s": round(report.total / seconds),
        "fill_seconds": round(filled, 1),
    }
    Path(ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "backtest.json").write_text(json.dumps(result, indent=2))
    verdict = "met" if seconds < 10 else "NOT met"
    print(
        "| figure | target | measured | |\n|---|---|---|---|\n"
        f"| `shipway rules backtest` of {report.total:,} logged predictions (examples/banking77 rules.yaml "
        f"against rules-proposed.yaml, read from a SQLite store) | under 10 s | {seconds:.2f} s "
        f"({result['rows_per_s']:,} rows/s; {report.changed:,} decisions change) | {verdict} |"
    )


if __name__ == "__main__":
    main()
