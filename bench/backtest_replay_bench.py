"""The backtest's replay of logged rows through the rules stage (issue 16) against the replay
of a baseline commit that called `RuleSet.decide` directly, side by side in one process on
the same rows: examples/banking77 rules.yaml against rules-proposed.yaml, rows in memory (as
parsed Parquet rows), so only the replay is timed (CPU time of this process: the machine is shared); then end to end
from a SQLite store. The
rules, rows and baseline come from bench/backtest_bench.py.

    .venv/bin/python bench/backtest_replay_bench.py [--rows 200000] [--rounds 3] [--baseline 2a034ad]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from backtest_bench import TEXT, banking77_rules, baseline, fill, outputs

from shipway.experiments.backtest import backtest, replay
from shipway.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="2a034ad")
    args = parser.parse_args()
    current, proposed, labels = banking77_rules()
    rows = [(request_id, ts, TEXT, output, None) for request_id, ts, output in outputs(args.rows, labels)]
    old = baseline(args.baseline)
    times: dict[str, list[float]] = {"baseline": [], "stage": []}
    reports = {}
    for _ in range(args.rounds):
        for name in ("baseline", "stage"):
            started = time.process_time()
            if name == "baseline":
                report = old.replay(iter(rows), current, proposed)
            else:
                report = replay(((*r, "on") for r in rows), current, proposed)
            times[name].append(time.process_time() - started)
            reports[name] = report.to_dict()
    assert reports["baseline"]["queue_changes"] == reports["stage"]["queue_changes"], "the two replays disagree"
    _print("replay of logged rows in memory", args, times)
    # End to end as `shipway rules backtest` runs it: the rows read from a SQLite store.
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        fill(store, args.rows, labels, current.version)
        times = {"baseline": [], "stage": []}
        for _ in range(args.rounds):
            for name in ("baseline", "stage"):
                started = time.process_time()
                run = old.backtest if name == "baseline" else backtest
                run(store.iter_predictions(service="banking77"), current, proposed)
                times[name].append(time.process_time() - started)
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
