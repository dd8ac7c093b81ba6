"""The backtest's replay of logged rows through the rules stage (issue 16) against the replay
of a baseline commit that called `RuleSet.decide` directly, side by side in one process on
the same rows: examples/banking77 rules.yaml against rules-proposed.yaml, rows in memory (as
parsed Parquet rows), so only the replay is timed.

    .venv/bin/python bench/backtest_replay_bench.py [--rows 200000] [--rounds 3] [--baseline 2a034ad]
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
from pathlib import Path

from shipway.experiments.backtest import backtest, replay
from shipway.rules.lifecycle import labels_from_manifest
from shipway.store import PredictionRecord, open_store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"
sys.path.insert(0, str(EXAMPLE))


def _baseline(commit: str) -> object:
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
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="2a034ad")
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
    rows = []
    for i in range(args.rows):
        p = round(rng.random(), 4)
        output = {
            "intent": rng.choice(labels),
            "probability": p,
            "alternatives": [{"intent": rng.choice(labels), "probability": p / 2}],
        }
        rows.append((f"r{i}", 1_700_000_000 + i * 0.01, {"text": "I am still waiting on my card?"}, output, None))
    old = _baseline(args.baseline)
    times: dict[str, list[float]] = {"baseline": [], "stage": []}
    reports = {}
    for _ in range(args.rounds):
        for name in ("baseline", "stage"):
            started = time.perf_counter()
            if name == "baseline":
                report = old.replay(iter(rows), current, proposed)  # type: ignore[attr-defined]
            else:
                report = replay(((*r, "on") for r in rows), current, proposed)
            times[name].append(time.perf_counter() - started)
            reports[name] = report.to_dict()
    assert reports["baseline"]["queue_changes"] == reports["stage"]["queue_changes"], "the two replays disagree"
    _print("replay of logged rows in memory", args, times)
    # End to end as `shipway rules backtest` runs it: the rows read from a SQLite store.
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        records = [
            PredictionRecord(
                rid, ts, "banking77", "m", 1.0, json.dumps(req).encode(), json.dumps(out).encode(), mode="on"
            )
            for rid, ts, req, out, _ in rows
        ]
        for start in range(0, len(records), 50_000):
            store.write_predictions(records[start : start + 50_000])
        times = {"baseline": [], "stage": []}
        for _ in range(args.rounds):
            for name in ("baseline", "stage"):
                started = time.perf_counter()
                run = old.backtest if name == "baseline" else backtest  # type: ignore[attr-defined]
                run(store.iter_predictions(service="banking77"), current, proposed)
                times[name].append(time.perf_counter() - started)
        store.close()
    _print("backtest of logged predictions read from a SQLite store", args, times)


def _print(what: str, args: argparse.Namespace, times: dict[str, list[float]]) -> None:
    base, stage = min(times["baseline"]), min(times["stage"])
    print(
        f"| {what}: {args.rows:,} rows, rules.yaml against rules-proposed.yaml | "
        f"baseline {args.baseline} (RuleSet.decide): {base:.2f} s ({args.rows / base:,.0f} rows/s) | "
        f"rules stage: {stage:.2f} s ({args.rows / stage:,.0f} rows/s) | {stage / base:.2f}x the baseline's time |"
    )


if __name__ == "__main__":
    main()
