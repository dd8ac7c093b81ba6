"""The parity gate over banking77's held-out examples (issue 19): its time beyond loading the candidate.

    .venv/bin/python bench/parity_bench.py [--rounds 5]

The candidate is a copy of the example's trained artifacts (`make train`) with the answers to
the whole test split recorded as `shipway train` records them (core/held_out.py). Each round
loads the candidate into the project's pipeline (timed apart), runs the gate (`check_parity`:
every example through the pipeline, batched, and compared), and, side by side, the model
alone on the same texts (one `predict_proba` call, the least any check of these answers must
pay). Prints a Markdown section: medians over rounds, and the gate / model-alone ratio.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import shipway.recipes
    from shipway.core.artifacts import write_manifest
    from shipway.core.held_out import run_held_out, write_held_out
    from shipway.deploy.parity import candidate_pipeline, check_parity

    test = EXAMPLE / "build" / "dataset" / "test.csv"
    if not (EXAMPLE / "artifacts" / "model.skops").is_file() or not test.is_file():
        sys.exit("train the example first: make train")
    with test.open(newline="", encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Path(shutil.copytree(EXAMPLE / "artifacts", Path(tmp) / "artifacts"))
        (artifacts / "held_out.jsonl").unlink(missing_ok=True)
        write_manifest(artifacts)
        pipeline = candidate_pipeline(EXAMPLE, artifacts)
        inputs = [(i, {"text": t}) for i, t in enumerate(texts)]
        write_held_out(artifacts, "test", None, run_held_out(pipeline, inputs))
        write_manifest(artifacts)

        predictor = shipway.recipes.load(artifacts, project=EXAMPLE)  # what banking77's load() returns
        loads, gates, alone = [], [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            pipeline = candidate_pipeline(EXAMPLE, artifacts)  # verified, then loaded
            loads.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = check_parity(pipeline, artifacts, 1e-6)
            gates.append(time.perf_counter() - started)
            assert report.ok and report.examples == len(texts), report.summary()
            started = time.perf_counter()
            predictor.predict_proba(texts)
            alone.append(time.perf_counter() - started)

    gate, load, model_alone = statistics.median(gates), statistics.median(loads), statistics.median(alone)
    print(
        f"{args.rounds} rounds, one process; the machine was shared with other engineers' tests and benchmarks "
        "(2 cores).\n\n"
        "| figure | target | measured |\n|---|---|---|\n"
        f"| parity gate over {len(texts):,} banking77 test examples, beyond loading | under 3 s | {gate:.2f} s |\n"
        f"| loading the candidate (verify digests, load the model) | | {load:.2f} s |\n"
        f"| the model alone on the same texts (one predict_proba) | | {model_alone:.2f} s |\n"
        f"| gate / model alone | | {gate / model_alone:.2f}x |\n\n"
        f"Per round, gate seconds: {', '.join(f'{g:.2f}' for g in gates)}."
    )


if __name__ == "__main__":
    main()
