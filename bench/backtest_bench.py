"""Backtest 1,000,000 logged predictions of the banking77 router: rules.yaml against
rules-proposed.yaml, read from a SQLite store, the way `shipway rules backtest` runs it.
With --baseline, the same backtest by that commit's replay too, side by side in this process
(its experiments/backtest.py read with `git show`), best of --rounds each.

    .venv/bin/python bench/backtest_bench.py [--rows 1000000] [--baseline 2a034ad] [--rounds 1]

The rules, the rows and the baseline's replay are made here for bench/backtest_replay_bench.py too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from shipway.experiments.backtest import backtest
from shipway.rules import RuleSet
from shipway.rules.lifecycle import labels_from_manifest
from shipway.store import PredictionRecord, Store, open_store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"
sys.path.insert(0, str(EXAMPLE))
TEXT = {"text": "I am still waiting on my card?"}


def banking77_rules() -> tuple[RuleSet, RuleSet, list[str]]:
    """The example's rules.yaml and rules-proposed.yaml, checked against its schemas, and its labels."""
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
    return load_rules(EXAMPLE / "rules.yaml", **schemas), load_rules(EXAMPLE / "rules-proposed.yaml", **schemas), labels


def outputs(rows: int, labels: list[str]) -> Iterator[tuple[str, float, dict[str, Any]]]:
    """(request id, ts, the model's output) of `rows` banking77 answers, the same for a seed."""
    rng = random.Random(7)
    for i in range(rows):
        intent = rng.choice(labels)
        p = round(rng.random(), 4)
        output = {
            "intent": intent,
            "probability": p,
            "alternatives": [{"intent": rng.choice(labels), "probability": round(p / 2, 4)}],
        }
        yield f"r{i}", 1_700_000_000 + i * 0.01, output


def fill(store: Store, rows: int, labels: list[str], rules_version: str) -> None:
    """`rows` logged predictions of the banking77 service, written in batches of 50,000."""
    inputs = json.dumps(TEXT).encode()
    batch = []
    for request_id, ts, output in outputs(rows, labels):
        batch.append(
            PredictionRecord(
                request_id=request_id,
                ts=ts,
                service="banking77",
                model_version="m",
                latency_ms=1.0,
                inputs=inputs,
                outputs=json.dumps(output).encode(),
                rules_version=rules_version,
                mode="on",
            )
        )
        if len(batch) == 50_000:
            store.write_predictions(batch)
            batch = []
    if batch:
        store.write_predictions(batch)


def baseline(commit: str) -> ModuleType:
    """experiments/backtest.py as `commit` has it, imported under the name baseline_backtest."""
    source = subprocess.run(
        ["git", "show", f"{commit}:src/shipway/experiments/backtest.py"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_backtest.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("baseline_backtest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_backtest"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline", help="also run this commit's backtest on the same store, e.g. 2a034ad")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    current, proposed, labels = banking77_rules()
    runs = {"this": backtest}
    if args.baseline:
        runs = {"baseline": baseline(args.baseline).backtest, **runs}
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu_times: dict[str, list[float]] = {name: [] for name in runs}  # wall time is hopeless under load
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        started = time.perf_counter()
        fill(store, args.rows, labels, current.version)
        filled = time.perf_counter() - started
        for _ in range(args.rounds):
            for name, run in runs.items():
                started = time.perf_counter()
                cpu = time.process_time()
                report = run(store.iter_predictions(service="banking77"), current, proposed)
                times[name].append(time.perf_counter() - started)
                cpu_times[name].append(time.process_time() - cpu)
        store.close()
    seconds = min(times["this"])
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
    if args.baseline:
        base, cpu, base_cpu = min(times["baseline"]), min(cpu_times["this"]), min(cpu_times["baseline"])
        print(
            f"| the same backtest by {args.baseline} | | {base:.2f} s ({report.total / base:,.0f} rows/s); "
            f"CPU {base_cpu:.2f} s against {cpu:.2f} s | this is {seconds / base:.2f}x the baseline's wall time, "
            f"{cpu / base_cpu:.2f}x its CPU time |"
        )


if __name__ == "__main__":
    main()
