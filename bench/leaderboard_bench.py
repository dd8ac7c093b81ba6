"""The banking77 leaderboard from one command: six recipes, three seeds each, timed end to end.

    .venv/bin/python bench/leaderboard_bench.py [--jobs 2] [--seeds 3] [--keep-cache] [--base SRC]

Runs `shipway try` in examples/banking77 with an empty store and, unless --keep-cache, an empty
embeddings cache (so the MiniLM embeddings are computed once, inside the timed command), then
prints the wall time, the CPU time of the command and its children (the workers, every thread),
each recipe's fits with their wall and CPU seconds (from the runs' manifests: the fit, the
worker's whole job, and the parent's held-out answers through the service), and
`shipway leaderboard`.
With `--base SRC` (a `src` folder of another build, e.g. `git archive main src`), the same
command runs first with that build's code (PYTHONPATH=SRC), so both are measured side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banking77"
RECIPES = ["tfidf-nb", "tfidf-lr", "char-svm", "minilm-lr", "minilm-knn", "minilm-svm"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--keep-cache", action="store_true")
    parser.add_argument("--base", type=Path, default=None, help="a src folder to measure first, side by side")
    parser.add_argument("recipes", nargs="*", default=RECIPES)
    args = parser.parse_args()
    if not (EXAMPLE / "build" / "dataset" / "train.csv").exists():
        subprocess.run([sys.executable, "data.py"], cwd=EXAMPLE, check=True)
    builds = ([("base", args.base.resolve())] if args.base else []) + [("this build", None)]
    figures = []
    for label, src in builds:
        print(f"== {label}" + (f" ({src})" if src else ""), flush=True)
        figures.append((label, *one(args, src)))
    for label, wall, cpu in figures:
        print(
            f"{label}: wall {wall:.1f} s, CPU (the command and its workers) {cpu:.1f} s "
            f"(on {os.cpu_count()} idle cores at best {cpu / (os.cpu_count() or 1):.1f} s of wall: arithmetic, not a measurement)"
        )
    if len(figures) == 2:
        print(f"this build / base: wall {figures[1][1] / figures[0][1]:.2f}x, CPU {figures[1][2] / figures[0][2]:.2f}x")


def one(args: argparse.Namespace, src: Path | None) -> tuple[float, float]:
    """One timed `shipway try` from an empty store (and cache): wall and CPU seconds."""
    shipway = str(Path(sys.executable).parent / "shipway")
    state = EXAMPLE / ".shipway"
    for name in ("shipway.db", "shipway.db-wal", "shipway.db-shm", "tries", "objects"):
        path = state / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if not args.keep_cache:
        shutil.rmtree(state / "cache", ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [shipway, "try", *args.recipes, "--seeds", str(args.seeds), "--jobs", str(args.jobs)]
    started_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print("$ " + " ".join(command[1:]), f"({started_at}, load average {os.getloadavg()})", flush=True)
    before = os.times()
    started = time.perf_counter()
    subprocess.run(command, cwd=EXAMPLE, env=env, check=True)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    print(
        f"wall time: {wall:.1f} s, CPU {cpu:.1f} s, for {len(args.recipes)} recipes x {args.seeds} seeds, --jobs {args.jobs}"
    )
    print(f"load average at the end: {os.getloadavg()}")
    fits(state / "tries")
    subprocess.run([shipway, "leaderboard"], cwd=EXAMPLE, env=env, check=True)
    return wall, cpu


def fits(tries: Path) -> None:
    """Per recipe: the fits made (a seed that reused another's fit is no fit) and their seconds."""
    manifests = [json.loads(p.read_text()) for p in sorted(tries.glob("*/manifest.json"))]
    rows: dict[str, list[dict]] = {}
    for m in manifests:
        if "same_fit_as" not in m:
            rows.setdefault(m["recipe"]["name"], []).append(m)

    def total(made: list[dict], key: str) -> str:
        values = [m.get(key) for m in made]
        return "-" if None in values else f"{sum(values):.1f}"

    print(
        "| recipe | runs | fits | fit s (wall) | fit CPU s | worker CPU s (fit, score, latency, save) | held-out CPU s (parent) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, made in rows.items():
        runs = sum(1 for m in manifests if m["recipe"]["name"] == name)
        print(
            f"| {name} | {runs} | {len(made)} | {total(made, 'fit_seconds')} | {total(made, 'fit_cpu_seconds')} "
            f"| {total(made, 'cpu_seconds')} | {total(made, 'held_out_cpu_seconds')} |"
        )
    every = [m for made in rows.values() for m in made]
    print(
        f"all recipes: {len(every)} fits for {len(manifests)} runs; fit CPU {total(every, 'fit_cpu_seconds')} s, "
        f"workers' jobs {total(every, 'cpu_seconds')} s, held-out answers {total(every, 'held_out_cpu_seconds')} s"
    )


if __name__ == "__main__":
    main()
