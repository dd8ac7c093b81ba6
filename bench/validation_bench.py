"""Validation speed: a generated 1,000-case suite against the banking77 example.

    .venv/bin/python bench/validation_bench.py [--cases 1000] [--repeats 3]

Runs the suite in-process and over HTTP against `shipway serve examples/banking77`,
each beside its baseline, measured in the same run: the bare predictions of the same
inputs (`Pipeline.run_batch`; POST /predict/batch), so the ratio is what checking and
diagnosing cost on top of predicting. Prints a Markdown section for docs/benchmarks.md
and writes bench/results/validation.json. Trains the example first if it has no model.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BANKING77 = ROOT / "examples" / "banking77"
TARGETS_S = {"in-process": 5.0, "http": 10.0}  # the budgets for 1,000 cases

sys.path.insert(0, str(ROOT / "src"))

from shipway.validation import HttpTarget, InProcessTarget, load_pipeline, load_suite, run_suites  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_model() -> None:
    if not (BANKING77 / "artifacts" / "model.skops").is_file():
        print("training the banking77 example (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "train.py"], cwd=BANKING77, check=True)


def generate_suite(path: Path, cases: int) -> dict[str, int]:
    """Label cases from the test split (their true labels: about one in nine fails and is
    diagnosed, as in a real suite), a tenth of them invariance cases over two rewordings."""
    with (BANKING77 / "data" / "test.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    step = max(1, len(rows) // cases)
    chosen = rows[::step][:cases]
    out: list[dict[str, Any]] = []
    for i, row in enumerate(chosen):
        case: dict[str, Any] = {"name": f"case {i}", "input": row["text"], "expect": {"label": row["category"]}}
        if i % 10 == 0:
            case["invariance"] = [row["text"].lower(), f"Hi, {row['text']} Thanks"]
        out.append(case)
    path.write_text(yaml.safe_dump({"name": "generated", "input_field": "text", "cases": out}, sort_keys=False))
    return {"cases": len(out), "inputs": len(out) + 2 * sum(1 for c in out if "invariance" in c)}


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The median wall time of `repeats` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def serve(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "shipway", "serve", str(BANKING77), "--port", str(port), "--no-log"]
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text())
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("shipway serve did not become ready in 120 s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    ensure_model()
    results: dict[str, Any] = {
        "repeats": args.repeats,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        suite_path = workdir / "generated.yaml"
        results["suite"] = generate_suite(suite_path, args.cases)
        load_s, suite = timed(lambda: load_suite(suite_path), args.repeats)
        items = [item for case in suite.cases for item in case.inputs]

        pipeline = load_pipeline(BANKING77)
        local = InProcessTarget(pipeline)
        bare_s, _ = timed(lambda: pipeline.run_batch(items, errors="return"), args.repeats)
        checks_s, _ = timed(lambda: run_suites([suite], local, diagnose=False), args.repeats)
        full_s, report = timed(lambda: run_suites([suite], local), args.repeats)
        results["in-process"] = {
            "load_suite_s": round(load_s, 4),
            "bare_run_batch_s": round(bare_s, 4),
            "checks_only_s": round(checks_s, 4),
            "validate_s": round(full_s, 4),
            "with_load_s": round(full_s + load_s, 4),
            "x_bare": round(full_s / bare_s, 2),
            "counts": report.counts,
            "diagnosed": sum(1 for r in report.results if r.diagnosis is not None),
        }

        port = free_port()
        proc = serve(port, workdir)
        try:
            url = f"http://127.0.0.1:{port}"
            remote = HttpTarget(url)
            with httpx.Client(base_url=url, timeout=60) as client:

                def bare_http() -> None:
                    for start in range(0, len(items), 512):
                        body = orjson.dumps({"items": items[start : start + 512]})
                        client.post("/predict/batch", content=body, headers={"content-type": "application/json"})

                bare_http()  # warm the connection
                bare_http_s, _ = timed(bare_http, args.repeats)
            http_checks_s, _ = timed(lambda: run_suites([suite], remote, diagnose=False), args.repeats)
            http_s, http_report = timed(lambda: run_suites([suite], remote), args.repeats)
            remote.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
        results["http"] = {
            "bare_predict_batch_s": round(bare_http_s, 4),
            "checks_only_s": round(http_checks_s, 4),
            "validate_s": round(http_s, 4),
            "with_load_s": round(http_s + load_s, 4),
            "x_bare": round(http_s / bare_http_s, 2),
            "counts": http_report.counts,
            "diagnosed": sum(1 for r in http_report.results if r.diagnosis is not None),
        }
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "validation.json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


def markdown(r: dict[str, Any]) -> str:
    local, http, suite = r["in-process"], r["http"], r["suite"]
    diagnosed = local["diagnosed"]
    lines = [
        "## Validation suites",
        "",
        f"A generated suite of {suite['cases']} cases ({suite['inputs']} inputs: label cases from the test split, "
        f"a tenth with two rewordings each) against the banking77 example; {diagnosed} cases fail and are "
        "diagnosed (traces and counterfactual reruns). `bench/validation_bench.py`, median of "
        f"{r.get('repeats', 3)} runs; the baseline is the bare prediction of the same inputs, measured in the same run.",
        "",
        "| run | bare predictions | checks only | checks and diagnoses | with suite loading | x bare | budget |",
        "|---|---|---|---|---|---|---|",
        f"| in-process | {local['bare_run_batch_s']:.3f} s | {local['checks_only_s']:.3f} s | {local['validate_s']:.3f} s "
        f"| {local['with_load_s']:.3f} s | {local['x_bare']:.1f} | {TARGETS_S['in-process']:.0f} s |",
        f"| over HTTP (`--url`) | {http['bare_predict_batch_s']:.3f} s | {http['checks_only_s']:.3f} s "
        f"| {http['validate_s']:.3f} s | {http['with_load_s']:.3f} s | {http['x_bare']:.1f} "
        f"| {TARGETS_S['http']:.0f} s |",
        "",
        f"Loading and checking the {suite['cases']}-case YAML file takes {local['load_suite_s']:.3f} s. "
        "Most of the time above the bare predictions is the diagnoses: one trace per failing input and one "
        "rerun per stage that can be left out.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
