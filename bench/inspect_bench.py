"""`shipway inspect labels` on the full BANKING77 training set (10,003 rows, 77 intents).

Flips a known random share of the labels (default 5%) to another intent, runs the command as a
user would, and scores the label issues it finds against the flipped rows; then runs it on the
file as published and prints the top issues to judge by eye. With --methods, also compares
cleanlab's filters on the same cross-validated probabilities.

    .venv/bin/python bench/inspect_bench.py [--noise 0.05] [--seed 0] [--methods]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "examples" / "banking77" / "data" / "train.csv"


def flip(frame: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, set[int]]:
    rng = np.random.default_rng(seed)
    intents = np.array(sorted(frame["category"].unique()))
    rows = rng.choice(len(frame), size=round(share * len(frame)), replace=False)
    noisy = frame.copy()
    given = noisy["category"].to_numpy(dtype=object)
    for i in rows:
        given[i] = rng.choice(intents[intents != given[i]])
    noisy["category"] = given
    return noisy, {int(i) for i in rows}


def inspect(path: Path) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "shipway", "inspect", "labels", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout), time.perf_counter() - started


def score(found: set[int], flipped: set[int]) -> str:
    hit = len(found & flipped)
    return f"{len(found)} issues, precision {hit / len(found):.3f}, recall {hit / len(flipped):.3f}"


def probabilities(frame: pd.DataFrame, tmp: Path) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """The command's default model, cross-validated on `frame`: probabilities, labels, classes, rows."""
    from shipway.inspection.crossval import default_model, out_of_sample_probabilities
    from shipway.inspection.labelled_data import read_dataset

    path = tmp / "frame.csv"
    frame.to_csv(path, index=False)
    dataset = read_dataset(path)
    factory, _ = default_model(dataset)
    given = dataset.labels
    classes = sorted(set(given.tolist()))
    probs = out_of_sample_probabilities(factory, dataset.inputs(), given)
    return probs, np.searchsorted(np.asarray(classes), given), classes, dataset.frame.index.to_numpy()


def flip_to_similar(
    frame: pd.DataFrame, probs: np.ndarray, classes: list[str], share: float, seed: int
) -> tuple[pd.DataFrame, set[int]]:
    """Flips to the intent the model finds likeliest after the given one: noise between intents
    that people confuse too, harder to find than a uniformly random flip."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(frame), size=round(share * len(frame)), replace=False)
    noisy = frame.copy()
    given = noisy["category"].to_numpy(dtype=object)
    for i in rows:
        order = np.argsort(-probs[i])
        given[i] = next(classes[c] for c in order if classes[c] != given[i])
    noisy["category"] = given
    return noisy, {int(i) for i in rows}


def compare_methods(clean: pd.DataFrame, noisy: pd.DataFrame, flipped: set[int], share: float, seed: int) -> None:
    """Every cleanlab filter on one set of out-of-sample probabilities per file."""
    from shipway.inspection.labels import METHODS, find_label_issues

    def found(probs: np.ndarray, y: np.ndarray, classes: list[str], rows: np.ndarray, method: str) -> set[int]:
        return {i.row for i in find_label_issues(y, probs, classes, rows, lambda i: "", method=method)}

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        clean_run = probabilities(clean, tmp)
        similar, similar_flipped = flip_to_similar(clean, clean_run[0], clean_run[2], share, seed)
        runs = [(probabilities(noisy, tmp), flipped), (probabilities(similar, tmp), similar_flipped)]
    print("\n| method | uniformly random flips | flips to the likeliest other intent | as published |")
    print("|---|---|---|---|")
    for method in METHODS:
        cells = [score(found(*run, method), rows) for run, rows in runs]
        cells.append(f"{len(found(*clean_run, method))} issues")
        print(f"| `{method}` | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", action="store_true", help="also compare cleanlab's filters")
    args = parser.parse_args()

    clean = pd.read_csv(TRAIN)
    noisy, flipped = flip(clean, args.noise, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train-noisy.csv"
        noisy.to_csv(path, index=False)
        report, seconds = inspect(path)
    found = {i["row"] for i in report["issues"]}
    print(f"{len(clean):,} rows, {report['classes']} intents, {len(flipped)} labels flipped (seed {args.seed})")
    print(f"with noise: {seconds:.1f} s wall ({report['seconds']:.1f} s inside), {score(found, flipped)}")
    caught = [i for i in report["issues"] if i["row"] in flipped]
    right = sum(i["suggested"] == clean.loc[i["row"], "category"] for i in caught)
    print(f"  suggested label is the original one for {right / len(caught):.3f} of the flipped rows found")
    print(f"  out-of-sample accuracy against the noisy labels {report['accuracy']:.3f}")

    report, seconds = inspect(TRAIN)
    print(
        f"as published: {seconds:.1f} s wall, {report['issue_count']} issues "
        f"({report['issue_count'] / report['rows']:.1%}), accuracy {report['accuracy']:.3f}"
    )
    published = {i["row"] for i in report["issues"]}
    others = found - flipped
    print(
        f"  of the {len(others)} rows found with noise that were not flipped, {len(others & published)} are "
        f"flagged in the published file too; counting those, precision {len(found & (flipped | published)) / len(found):.3f}"
    )
    for issue in report["issues"][:15]:
        print(f"  {issue['row']:>5}  {issue['given']:<28} -> {issue['suggested']:<28} {issue['example'][:70]}")
    print("most frequent pairs:", [(c["given"], c["suggested"], c["count"]) for c in report["confusions"][:5]])
    print("worst slices:")
    for s in report["slices"][:8]:
        print(f"  {s['slice']:<45} {s['rows']:>5} {s['error_rate']:.3f} {s['ci95']}")
    if args.methods:
        compare_methods(clean, noisy, flipped, args.noise, args.seed)


if __name__ == "__main__":
    main()
