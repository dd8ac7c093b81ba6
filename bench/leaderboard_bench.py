"""The banking77 leaderboard from one command: six recipes, three seeds each, timed end to end.

    .venv/bin/python bench/leaderboard_bench.py [--jobs 2] [--seeds 3] [--keep-cache]

Runs `shipway try` in examples/banking77 with an empty store and, unless --keep-cache, an empty
embeddings cache (so the MiniLM embeddings are computed once, inside the timed command), then
prints the wall time and `shipway leaderboard`.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("recipes", nargs="*", default=RECIPES)
    args = parser.parse_args()
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
    if not (EXAMPLE / "build" / "dataset" / "train.csv").exists():
        subprocess.run([sys.executable, "data.py"], cwd=EXAMPLE, check=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [shipway, "try", *args.recipes, "--seeds", str(args.seeds), "--jobs", str(args.jobs)]
    print("$ " + " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=EXAMPLE, env=env, check=True)
    wall = time.perf_counter() - started
    print(f"wall time: {wall:.1f} s for {len(args.recipes)} recipes x {args.seeds} seeds, --jobs {args.jobs}")
    print(f"load average at the end: {os.getloadavg()}")
    subprocess.run([shipway, "leaderboard"], cwd=EXAMPLE, env=env, check=True)


if __name__ == "__main__":
    main()
