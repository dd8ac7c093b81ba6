"""What verifying the artifacts costs (issue 15): the banking77 example loaded with and without it.

    .venv/bin/python bench/artifacts_bench.py [--rounds 15]

Each round starts two fresh Python processes, one after the other, in alternating order: one
verifies the artifacts folder against its manifest (`verify_artifacts`, the check every load runs)
and then runs the example's load(); the other runs load() alone. Each process times, on its own
clock, the import of service.py (numpy, scikit-learn, skops), the verification and load(). The
files are in the page cache after the first round, as on a server that restarts. Reported: the
median over rounds of verification / load() (what the check adds to loading the model) and of
verification / (import + load()) (what it adds to loading the service), with their quartiles, and
the medians of each time. The machine may be shared: the ratios, taken within a round, are what
is compared. Prints a Markdown section for docs/benchmarks.md (bench/run.py adds its title).
Trains the example when it has no model.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BANKING77 = ROOT / "examples" / "banking77"

ONE = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from shipway.core.artifacts import verify_artifacts
from shipway.core.service import import_service
module, _ = import_service(sys.argv[1])
folder = Path(sys.argv[1]) / "artifacts"
imported = time.perf_counter()
if sys.argv[2] == "with":
    verify_artifacts(folder)
verified = time.perf_counter()
module.load(folder)
loaded = time.perf_counter()
print(json.dumps({"import": imported - started, "verify": verified - imported, "load": loaded - verified}))
"""


def ensure_model() -> None:
    if not (BANKING77 / "artifacts" / "model.skops").is_file():
        print("training the banking77 example (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "train.py"], cwd=BANKING77, check=True)


def one(kind: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", ONE, str(BANKING77), kind], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return dict(json.loads(out.stdout))


def quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    ensure_model()
    one("with")  # the page cache holds the files from here on
    rounds = []
    for i in range(args.rounds):
        order = ("with", "without") if i % 2 == 0 else ("without", "with")
        result = {kind: one(kind) for kind in order}
        rounds.append(result)
        w, wo = result["with"], result["without"]
        print(
            f"round {i + 1}: verify {w['verify'] * 1000:.0f} ms, load {w['load'] * 1000:.0f} ms "
            f"(without verification: {wo['load'] * 1000:.0f} ms), import {w['import'] * 1000:.0f} ms",
            file=sys.stderr,
        )
    of_load = [r["with"]["verify"] / r["with"]["load"] for r in rounds]
    of_start = [r["with"]["verify"] / (r["with"]["import"] + r["with"]["load"]) for r in rounds]
    side = [r["with"]["load"] / r["without"]["load"] for r in rounds]

    def median_ms(kind: str, key: str) -> float:
        return statistics.median(r[kind][key] for r in rounds) * 1000

    files = json.loads((BANKING77 / "artifacts" / "manifest.json").read_text())["files"]
    size = sum((BANKING77 / "artifacts" / name).stat().st_size for name in files)
    lo, hi = quartiles(of_load)
    slo, shi = quartiles(of_start)
    print(f"""`.venv/bin/python bench/artifacts_bench.py --rounds {args.rounds}` on {platform.machine()}, Python \
{platform.python_version()}: {args.rounds} rounds, each two fresh processes in alternating order, one \
verifying the banking77 artifacts ({len(files)} files, {size / 1e6:.1f} MB, sha256 with hashlib) before \
load(), one running load() alone.

| | median | middle half |
|---|---|---|
| verification / load() | {statistics.median(of_load):.1%} | {lo:.1%} to {hi:.1%} |
| verification / (import of service.py + load()) | {statistics.median(of_start):.1%} | {slo:.1%} to {shi:.1%} |
| load() after verification / load() alone | {statistics.median(side):.2f} | {quartiles(side)[0]:.2f} to {quartiles(side)[1]:.2f} |

Median times: verification {median_ms("with", "verify"):.0f} ms; load() {median_ms("with", "load"):.0f} ms \
after it and {median_ms("without", "load"):.0f} ms without it; import of service.py \
{median_ms("with", "import"):.0f} ms.""")


if __name__ == "__main__":
    main()
