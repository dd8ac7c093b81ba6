"""What mounting the dashboard costs /predict (issue 16): the identity service at 64 connections,
this build with the dashboard mounted, with `--no-dashboard`, and a baseline checkout twice.

    .venv/bin/python bench/dashboard_mount_bench.py --baseline /work/main/src [--rounds 10] [--burst 2]

The servers and the rounds are latency_bench.py's (each server pinned to CPU 0, wrk to CPU 1,
the order reversed every other round); each figure is the median over rounds of a ratio taken
within the round. The baseline against itself (A/A) shows how far the machine's noise alone
moves a ratio. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import latency_bench as lb  # noqa: E402
import run  # noqa: E402

PAIRS = (
    ("identity", "base:identity", "this build / the baseline"),
    ("identity", "identity_nodash", "dashboard mounted / --no-dashboard (this build)"),
    ("base2:identity", "base:identity", "the baseline / itself (A/A: the noise)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the src folder of the checkout to compare with")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--burst", type=int, default=2, help="seconds of load per burst")
    args = parser.parse_args()
    if not (Path(args.baseline) / "shipway" / "__init__.py").is_file():
        sys.exit(f"--baseline {args.baseline} holds no shipway package; give the src folder of a checkout")
    base = lb._env(args.baseline)
    order = [
        (lb.Server("identity", run.IDENTITY), 64),
        (lb.Server("base:identity", run.IDENTITY, env=base), 64),
        (lb.Server("identity_nodash", run.IDENTITY, ("--no-dashboard",)), 64),
        (lb.Server("base2:identity", run.IDENTITY, env=base), 64),
    ]
    readings = lb.measure(order, args.rounds, args.burst)
    print("| identity at 64 connections | req/s | p50 (as a speed) | p99 (as a speed) |")
    print("|---|---:|---:|---:|")
    for a, b, label in PAIRS:
        cells = []
        for key in ("rps", "p50", "p99"):
            pairs = zip(readings[(a, 64)], readings[(b, 64)], strict=True)
            ratios = [x[key] / y[key] if key == "rps" else y[key] / x[key] for x, y in pairs]
            cells.append(f"{statistics.median(ratios):.2f}x")
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
