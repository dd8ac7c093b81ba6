"""From `shipway new ... --yes` to the first prediction over HTTP, per library.

    .venv/bin/python bench/new_bench.py [--repeats 3] [--libraries sklearn,custom,...]

For each library whose requirements are installed, in a fresh folder, as a user would: run
`shipway new NAME --library L --yes` (which renders the template, commits it, and trains the
baseline), start `shipway serve` on the project, and POST its example to /predict until the
answer is 200. The clock runs from the start of `shipway new` to that answer. The same run
also times the parts: `shipway new --no-train` (render and git), `python train.py`, and
`shipway serve` to the first answer. Prints a Markdown section for docs/benchmarks.md and
writes bench/results/new.json. The target (issue 3): under 30 s for scikit-learn.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))

from shipway.templates import QUESTIONS, missing_requirements  # noqa: E402

SHIPWAY = [sys.executable, "-m", "shipway"]
TARGET_S = {"sklearn": 30.0}
# The input and output each library is timed with (the template's defaults where they apply).
KINDS = {library: ("text", "label") for library in QUESTIONS[0].values}
NAMES = {
    "sklearn": "scikit-learn",
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "pytorch": "PyTorch",
    "onnx": "ONNX Runtime",
    "sentence-embeddings": "sentence embeddings",
    "custom": "plain Python",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - started


def first_answer(project: Path, work: Path, body: bytes, timeout: float = 180) -> float:
    """Seconds from starting `shipway serve` to a 200 from POST /predict."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/predict"
    command = [*SHIPWAY, "serve", str(project), "--port", str(port), "--store", f"sqlite:///{work / 'store.db'}"]
    log = (work / "serve.log").open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"shipway serve exited with {proc.returncode}: {(work / 'serve.log').read_text()}")
            try:
                response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
                if response.status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"no answer from {url} within {timeout} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def example_body(project: Path) -> bytes:
    code = "import service; print(service.example.model_dump_json())"
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=True)
    return out.stdout.strip().encode()


def measure(library: str, work: Path) -> dict[str, float]:
    """One timed run: new (trains) then serve to the first answer; and the parts, separately."""
    input_kind, output = KINDS[library]
    kinds = ["--library", library, "--input", input_kind, "--output", output]
    whole = work / "whole"
    whole.mkdir()
    started = time.perf_counter()
    new_s = run([*SHIPWAY, "new", "svc", *kinds, "--yes"], whole)
    project = whole / "svc"
    # The body is read before the clock stops only by this tiny import; it is what a user types.
    body = example_body(project)
    body_s = time.perf_counter() - started - new_s
    serve_s = first_answer(project, whole, body)
    total_s = time.perf_counter() - started - body_s

    parts = work / "parts"
    parts.mkdir()
    render_s = run([*SHIPWAY, "new", "svc", *kinds, "--yes", "--no-train"], parts)
    train_s = run([sys.executable, "train.py"], parts / "svc")
    return {"total_s": total_s, "new_s": new_s, "serve_s": serve_s, "render_s": render_s, "train_s": train_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per library; the median is reported")
    parser.add_argument("--libraries", default=",".join(QUESTIONS[0].values))
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    base = Path(tempfile.mkdtemp(prefix="shipway-new-bench-"))
    os.environ["XDG_CACHE_HOME"] = str(base / "cache")  # a template cache of its own
    results: dict[str, Any] = {"python": platform.python_version(), "cores": os.cpu_count(), "libraries": {}}
    try:
        for library in args.libraries.split(","):
            missing = missing_requirements(library)
            if missing:
                print(f"{library}: skipped, not installed: {', '.join(missing)}", file=sys.stderr)
                results["libraries"][library] = {"skipped": f"not installed: {', '.join(missing)}"}
                continue
            runs = []
            for i in range(args.repeats):
                work = base / f"{library}-{i}"
                work.mkdir()
                runs.append(measure(library, work))
                print(f"{library} run {i + 1}: {runs[-1]['total_s']:.1f} s", file=sys.stderr)
            median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            results["libraries"][library] = {"kinds": KINDS[library], "runs": runs, "median": median}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "new.json").write_text(json.dumps(results, indent=2) + "\n")
    print(render(results, args.repeats))


def render(results: dict[str, Any], repeats: int) -> str:
    lines = [
        "From `shipway new NAME --library L --yes` to the first 200 from POST /predict on `shipway serve`,",
        f"in a fresh folder, with the libraries already installed: the median of {repeats} runs, on",
        f"{results['cores']} cores, Python {results['python']}. `new` renders the template, commits it and trains",
        "the baseline on its synthetic dataset; the parts are timed again separately in the same run.",
        "Raw numbers: `bench/results/new.json`.",
        "",
        "| library | input, output | new to first answer | target | shipway new | serve to first answer | render + git | train.py |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for library, r in results["libraries"].items():
        if "skipped" in r:
            lines.append(f"| {NAMES[library]} | | {r['skipped']} | | | | | |")
            continue
        m = r["median"]
        target = TARGET_S.get(library)
        verdict = ""
        if target:
            met = "met" if m["total_s"] < target else "NOT met"
            verdict = f"under {target:g} s: {met} ({m['total_s'] / target:.2f}x of it)"
        lines.append(
            f"| {NAMES[library]} | {', '.join(r['kinds'])} | {m['total_s']:.1f} s | {verdict} | {m['new_s']:.1f} s "
            f"| {m['serve_s']:.1f} s | {m['render_s']:.1f} s | {m['train_s']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
