"""Drift detection speed: 1,000,000 logged rows by 20 numeric and 5 categorical features,
shipway's `compare` beside Evidently's DataDriftPreset on the same data, in the same run.

    .venv/bin/python bench/drift_bench.py [--rows 1000000] [--rounds 3] [--log-rows 200000]

Seeded data: some features drifted, some not (the truth is part of the output). shipway's
profile is built beforehand, as at training time (timed separately), and `compare` runs every
method: PSI, KS and normed Wasserstein on numeric features; chi-squared, Jensen-Shannon and
new categories on categorical ones. The window is given as the prediction log yields it:
Python lists. Evidently runs in a venv of its own (bench/results/evidently-venv, created on
first use) because evidently 0.7 does not import under pandas 3; see drift_evidently.py.
Also times reading a window of `--log-rows` rows from a real SQLite prediction log.
Prints a Markdown section for docs/benchmarks.md and writes bench/results/drift.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
EVIDENTLY_VENV = BENCH / "results" / "evidently-venv"
# Pinned: evidently 0.7.23 declares pandas>=1.3.5 but fails to import under pandas 3.
EVIDENTLY_REQUIREMENTS = ["evidently==0.7.23", "pandas>=2.2,<3", "numpy>=1.26"]
TARGET_SECONDS, TARGET_RATIO = 3.0, 10.0

sys.path.insert(0, str(ROOT / "src"))

from shipway.monitoring.drift.comparison import compare  # noqa: E402
from shipway.monitoring.drift.profile import Profile  # noqa: E402
from shipway.monitoring.drift.window import window_from_store  # noqa: E402
from shipway.store import PredictionRecord, open_store  # noqa: E402

CATEGORIES = np.array([f"c{i:02d}" for i in range(20)])


def numeric_column(i: int, n: int, rng: np.random.Generator, drift: bool) -> np.ndarray:
    """Five families of four features; the first of each family drifts, and num_1 moves a little (not drift)."""
    family, member = divmod(i, 4)
    if family == 0:
        shift = 0.5 if drift else (0.02 if member == 1 else 0.0)
        return rng.normal(shift, 1.0, size=n)
    if family == 1:
        return rng.lognormal(0.0, 0.75 if drift else 0.5, size=n)
    if family == 2:
        return rng.uniform(0.2, 1.2, size=n) if drift else rng.uniform(0.0, 1.0, size=n)
    if family == 3:
        return rng.poisson(4.0 if drift else 3.0, size=n).astype(np.float64)  # ties: counts
    return rng.exponential(1.3 if drift else 1.0, size=n)


def categorical_column(i: int, n: int, rng: np.random.Generator, drift: bool) -> np.ndarray:
    weights = 1 / np.arange(1, 21)
    if drift and i == 0:
        weights = weights[::-1]  # the rare categories become the common ones
    values = CATEGORIES[rng.choice(20, size=n, p=weights / weights.sum())]
    if drift and i == 1:
        values[rng.random(n) < 0.1] = "new"  # a tenth of the window in a category never seen
    return values


def make_data(rows: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, bool]]:
    rng = np.random.default_rng(seed)
    reference: dict[str, np.ndarray] = {}
    current: dict[str, np.ndarray] = {}
    truth: dict[str, bool] = {}
    for i in range(20):
        name, drifted = f"num_{i}", i % 4 == 0
        reference[name] = numeric_column(i, rows, rng, False)
        current[name] = numeric_column(i, rows, rng, drifted)
        truth[name] = drifted
    for i in range(5):
        name, drifted = f"cat_{i}", i < 2
        reference[name] = categorical_column(i, rows, rng, False)
        current[name] = categorical_column(i, rows, rng, drifted)
        truth[name] = drifted
    return reference, current, truth


def as_logged(columns: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """Columns as a window read from the prediction log holds them: Python lists."""
    return {name: values.tolist() for name, values in columns.items()}


def evidently_python() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {EVIDENTLY_VENV} for Evidently (once)...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(EVIDENTLY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS], check=True)
    return python


def run_evidently(data_file: Path, runs: int) -> dict[str, Any]:
    out = subprocess.run(
        [str(evidently_python()), str(BENCH / "drift_evidently.py"), str(data_file), str(runs)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DO_NOT_TRACK": "1"},  # no telemetry calls from Evidently
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def log_window(profile: Profile, current: dict[str, np.ndarray], rows: int, work: Path) -> dict[str, float]:
    """Write `rows` rows of the window into a SQLite prediction log, then read the window back."""
    names = list(current)
    columns = [current[name][:rows].tolist() for name in names]
    store = open_store(f"sqlite:///{work / 'log.db'}")
    try:
        started = time.perf_counter()
        for start in range(0, rows, 10_000):
            chunk = range(start, min(rows, start + 10_000))
            store.write_predictions(
                [
                    PredictionRecord(
                        f"r{i}",
                        1_000.0 + i,
                        "bench",
                        "v1",
                        1.0,
                        orjson.dumps(dict(zip(names, (col[i] for col in columns), strict=True))),
                        b'{"ok":true}',
                    )
                    for i in chunk
                ]
            )
        written = time.perf_counter() - started
        started = time.perf_counter()
        window = window_from_store(store, service="bench", profile=profile)
        read = time.perf_counter() - started
    finally:
        store.close()
    assert window.n_rows == rows
    started = time.perf_counter()
    compare(profile, window)
    compared = time.perf_counter() - started
    return {"rows": rows, "write_s": written, "read_s": read, "compare_s": compared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the reference and in the window")
    parser.add_argument("--rounds", type=int, default=3, help="shipway runs (median); Evidently runs once")
    parser.add_argument("--log-rows", type=int, default=200_000, help="rows for the SQLite read timing; 0 skips")
    parser.add_argument("--no-evidently", action="store_true", help="skip the Evidently baseline")
    args = parser.parse_args()

    reference, current, truth = make_data(args.rows, seed=2024)
    started = time.perf_counter()
    profile = Profile.build(reference)
    build_s = time.perf_counter() - started
    window = as_logged(current)

    work = Path(tempfile.mkdtemp(prefix="shipway-drift-bench-"))
    evidently: dict[str, Any] | None = None
    shipway_s: list[float] = []
    report = None
    # Interleaved: a burst of load from elsewhere on this shared machine hits both sides.
    for round_ in range(args.rounds):
        started = time.perf_counter()
        report = compare(profile, window)
        shipway_s.append(time.perf_counter() - started)
        if round_ == 0 and not args.no_evidently:
            data_file = work / "data.npz"
            arrays = {f"reference/{k}": v for k, v in reference.items()} | {
                f"current/{k}": v for k, v in current.items()
            }
            np.savez(data_file, **arrays)  # type: ignore[arg-type]
            evidently = run_evidently(data_file, runs=1)
    assert report is not None
    try:
        log = log_window(profile, current, args.log_rows, work) if args.log_rows else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "rows": args.rows,
        "profile_build_s": build_s,
        "shipway_s": shipway_s,
        "evidently": evidently,
        "log": log,
        "truth": truth,
        "report": report.to_dict(),
    }
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "drift.json").write_text(json.dumps(results, indent=1))
    print(render(results, report))


def render(r: dict[str, Any], report: Any) -> str:
    ours = statistics.median(r["shipway_s"])
    ev = r["evidently"]
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    lines = [
        f"{r['rows']:,} window rows by 20 numeric and 5 categorical features against a reference of "
        f"{r['rows']:,} rows; seeded, 7 features drifted (`bench/drift_bench.py`). shipway runs every method "
        "(PSI, KS, normed Wasserstein; chi-squared, Jensen-Shannon, new categories) on a window given as the "
        "prediction log yields it (Python lists), against a profile built beforehand; Evidently "
        f"{ev['versions']['evidently'] if ev else '(skipped)'} runs its DataDriftPreset (normed Wasserstein and "
        "Jensen-Shannon at this size) on pandas DataFrames, in a venv of its own (pandas "
        f"{ev['versions']['pandas'] if ev else '-'}: evidently 0.7 does not import under pandas 3). "
        f"Python {platform.python_version()}, {os.cpu_count()} cores, shared.",
        "",
        "| figure | target | measured | |",
        "|---|---|---|---|",
        f"| shipway `compare`, all methods (median of {len(r['shipway_s'])}) | under {TARGET_SECONDS:g} s "
        f"| {ours:.2f} s | {verdict(ours < TARGET_SECONDS)} |",
    ]
    if ev:
        ratio = min(ev["seconds"]) / ours
        lines.append(
            f"| Evidently DataDriftPreset / shipway | at least {TARGET_RATIO:g}x | {min(ev['seconds']):.1f} s / "
            f"{ours:.2f} s = {ratio:.1f}x | {verdict(ratio >= TARGET_RATIO)} |"
        )
    lines += [
        f"| building the profile from the {r['rows']:,} reference rows (once, at training) | | "
        f"{r['profile_build_s']:.2f} s | |",
    ]
    if r["log"]:
        log = r["log"]
        lines.append(
            f"| reading a window of {log['rows']:,} rows from a SQLite prediction log (`window_from_store`) | | "
            f"{log['read_s']:.2f} s ({log['read_s'] / log['rows'] * 1e6:.1f} us a row); compare on it "
            f"{log['compare_s']:.2f} s; writing them {log['write_s']:.1f} s | |"
        )
    lines += [
        "",
        "Verdicts per column, where the two tools use the same method (shipway's profile keeps a 20,000-value "
        "sample of each numeric reference column, so its normed Wasserstein can differ from Evidently's "
        "by the sampling error the profile states):",
        "",
        "| column | drifted (truth) | shipway method: value | shipway | Evidently method: value | Evidently | agree |",
        "|---|---|---|---|---|---|---|",
    ]
    agree = 0
    for name, drifted in r["truth"].items():
        method = "wasserstein" if name.startswith("num_") else "jensenshannon"
        ours_r = report.result(name, method)
        theirs = ev["columns"][name] if ev else None
        same = theirs is not None and theirs["drifted"] == ours_r.drifted
        agree += same
        their_cells = f"{theirs['method']}: {theirs['value']:.4f} | {theirs['drifted']}" if theirs else "- | -"
        lines.append(
            f"| {name} | {drifted} | {method}: {ours_r.value:.4f} | {ours_r.drifted} | {their_cells} | "
            f"{'yes' if same else 'NO'} |"
        )
    features = report.features
    right = sum(1 for f in features if bool(f.drifted) == r["truth"][f.feature])
    lines += [
        "",
        f"Same verdict on {agree} of {len(r['truth'])} columns. Over all its methods (a feature drifts when any "
        f"method says so) shipway is right about {right} of {len(features)} features; its summary: "
        f"{report.summary()['n_drifted']} drifted, dataset drift {report.dataset_drift}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
