"""The rules engine of this checkout against another's, side by side in one run, in CPU time:
`decide` per call (the 50-row table and the 20 ordered rules of bench/rules_bench.py) and
`RuleSet.decide_many` over logged rows (the backtest's batch form). Each build runs in a child
process with its `src` first on PYTHONPATH; rounds alternate the builds and each figure is the
best round. CPU time of the child, so the figures hold on a loaded machine.

    .venv/bin/python bench/rules_builds_bench.py --build base=../base-2a034ad/src [--rows 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent

_CHILD = """
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
import rules_bench as rb
from shipway.rules import load_rules
names = rb.labels()
rows, rules = rb.table_rows(names), rb.ordered_rules(names)
kw = dict(output_schema=rb.OUTPUT_SCHEMA, meta_schema=rb.META_SCHEMA, labels=names)
table = load_rules(rb.shipway_table_yaml(rows), **kw)
ordered = load_rules(rb.shipway_rules_yaml(rules), **kw)
data = rb.samples(names, 2000)
out = {}
for name, rs in (("table_us", table), ("rules_us", ordered)):
    decide = rs.decide
    started = time.process_time()
    for _ in range(20):
        for row in data:
            decide(*row)
    out[name] = (time.process_time() - started) / (20 * len(data)) * 1e6
logged = rb.samples(names, int(sys.argv[2]), seed=11)
gc.collect()
started = time.process_time()
ordered.decide_many(logged)
out["decide_many_s"] = time.process_time() - started
print(json.dumps(out))
"""


def child(src: str | None, rows: int) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(Path(src).resolve())
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(BENCH), str(rows)], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True, help="NAME=SRC: the baseline checkout's src folder")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    name, _, src = args.build.partition("=")
    builds: dict[str, str | None] = {name: src, "this": None}
    best: dict[str, dict[str, float]] = {}
    for round_ in range(args.rounds):
        for build in builds if round_ % 2 == 0 else reversed(list(builds)):
            got = child(builds[build], args.rows)
            mine = best.setdefault(build, got)
            for key, value in got.items():
                mine[key] = min(mine[key], value)
    base, this = best[name], best["this"]
    print(f"| figure (CPU time, best of {args.rounds}) | {name} | this | this / {name} |")
    print("|---|---:|---:|---:|")
    for key, what in (
        ("table_us", "`decide`, 50-row decision table, µs per call"),
        ("rules_us", "`decide`, 20 ordered rules, µs per call"),
        ("decide_many_s", f"`RuleSet.decide_many` over {args.rows:,} logged rows (20 ordered rules), s"),
    ):
        print(f"| {what} | {base[key]:.3f} | {this[key]:.3f} | {this[key] / base[key]:.2f}x |")


if __name__ == "__main__":
    main()
