"""Run tracking and dataset versioning, side by side with their baselines in one run (issue 18).

    .venv/bin/python bench/experiments_bench.py [--rounds 5] [--artifact-mb 50] [--runs 10000] [--data-mb 200]
        [--only listing|dataset|banking77|...] [--build NAME=ROOT ...]

1. A run's 10 parameters and 100 metrics, logged one at a time: shipway's `Run` against
   MLflow's client on its local SQLite tracking store (rounds interleaved, medians).
2. Storing a 50 MB artifact against copying it and hashing it.
3. Listing 10,000 runs from a SQLite store (and PostgreSQL with `--postgres URL`).
4. Hashing a dataset (content version) and building and registering it against writing its
   files with the csv module.

`--build NAME=ROOT` measures listing, the synthetic dataset and banking77 for this checkout and
for another one (ROOT: a checkout or `git archive` of another commit, whose src/ and
examples/banking77 are used), each in its own processes of `--rounds` rounds, alternating, and
reports both with their ratio; the synthetic dataset is also written through `write_split` by
this checkout, in processes of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from shipway.experiments.dataset_versions import content_version, register_folder
from shipway.experiments.tracking import open_run
from shipway.store import open_store
from shipway.store.objects import ObjectStore
from shipway.store.runs import RunRecord

PARAMS = 10
METRICS = 100


def shipway_run(store_url: str, objects: ObjectStore, root: Path) -> tuple[float, float]:
    """Seconds for the logging calls (and the final write), and for the whole run."""
    store = open_store(store_url)
    started = time.perf_counter()
    run = open_run(store, objects, project="bench", root=root)
    logging = time.perf_counter()
    for i in range(PARAMS):
        run.log_param(f"param_{i}", i * 0.5)
    for i in range(METRICS):
        run.log_metric(f"metric_{i}", i / METRICS)
    run.end()
    done = time.perf_counter()
    store.close()
    return done - logging, done - started


def mlflow_run(mlflow: object) -> tuple[float, float]:
    started = time.perf_counter()
    active = mlflow.start_run()  # type: ignore[attr-defined]
    logging = time.perf_counter()
    for i in range(PARAMS):
        mlflow.log_param(f"param_{i}", i * 0.5)  # type: ignore[attr-defined]
    for i in range(METRICS):
        mlflow.log_metric(f"metric_{i}", i / METRICS)  # type: ignore[attr-defined]
    mlflow.end_run()  # type: ignore[attr-defined]
    done = time.perf_counter()
    del active
    return done - logging, done - started


def bench_logging(tmp: Path, rounds: int) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    store_url = f"sqlite:///{tmp / 'shipway.db'}"
    objects = ObjectStore(tmp / "objects")
    project = tmp / "project"
    project.mkdir()
    # One run each first: MLflow creates its schema, shipway reads the package list.
    mlflow_run(mlflow)
    shipway_run(store_url, objects, project)
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(rounds):
        theirs.append(mlflow_run(mlflow))
        ours.append(shipway_run(store_url, objects, project))
    for what, index in (("logging calls and end of run", 0), ("whole run, start to end", 1)):
        a = statistics.median(t[index] for t in ours)
        b = statistics.median(t[index] for t in theirs)
        print(
            f"{PARAMS} params + {METRICS} metrics, {what}: shipway {a * 1000:.2f} ms, MLflow {b * 1000:.1f} ms, {b / a:.0f}x"
        )


def median_of(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_artifact(tmp: Path, mb: int, rounds: int) -> None:
    source = tmp / "model.bin"
    source.write_bytes(os.urandom(mb << 20))
    ours, theirs = [], []
    for i in range(rounds):
        objects = ObjectStore(tmp / f"objects-{i}")
        target = tmp / f"copy-{i}"

        def copy_and_hash(target: Path = target) -> None:
            shutil.copyfile(source, target)
            with open(target, "rb") as fh:
                hashlib.file_digest(fh, "sha256")

        theirs.append(median_of(copy_and_hash, 1))
        ours.append(median_of(lambda objects=objects: objects.put(source), 1))
        shutil.rmtree(tmp / f"objects-{i}")
        target.unlink()
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"store a {mb} MB artifact: shipway {a * 1000:.0f} ms, copy + sha256 {b * 1000:.0f} ms, ratio {a / b:.2f}")


def bench_listing(url: str, runs: int, rounds: int) -> list[tuple[float, float]]:
    """Wall and CPU seconds of each listing of `runs` runs from the store at `url`."""
    with open_store(url) as store:
        for i in range(runs):
            record = RunRecord(
                id=f"{i:032x}",
                project="bench",
                status="finished",
                started=1_700_000_000 + i,
                ended=1_700_000_060 + i,
                code={"commit": "0" * 40, "diff": "x" * 2000},
                environment={"packages": {f"package-{j}": "1.0" for j in range(150)}},
                config={"C": 1.0},
                metrics={"valid_accuracy": 0.9, "test_accuracy": 0.88, "latency_ms_p50": 1.2},
            )
            store.insert_run(record)
        assert len(store.list_runs(project="bench")) == runs
        return [timed(lambda: store.list_runs(project="bench")) for _ in range(rounds)]


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """`url` in a schema of its own, dropped afterwards."""
    import psycopg

    schema = f"shipway_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def write_dataset(folder: Path, rows: list[tuple[str, str]], write_split: Callable[..., object] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (
        ("train", rows[: len(rows) * 8 // 10]),
        ("valid", rows[len(rows) * 8 // 10 : len(rows) * 9 // 10]),
        ("test", rows[len(rows) * 9 // 10 :]),
    ):
        if write_split is not None:
            write_split(folder / f"{name}.csv", ("text", "category"), part, target="category")
            continue
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(("text", "category"))
            writer.writerows(part)


def bench_dataset(tmp: Path, mb: int, rounds: int, writer: str = "csv") -> dict[str, list[tuple[float, float]]]:
    """Writing the synthetic splits with csv.writer (or, `writer="write_split"`, through
    `write_split`), then registering them."""
    rng = random.Random(7)
    words = [f"w{i}" for i in range(5000)]
    labels = [f"label_{i}" for i in range(77)]
    rows: list[tuple[str, str]] = []
    size = 0
    while size < mb << 20:
        text = " ".join(rng.choices(words, k=12))
        rows.append((text, rng.choice(labels)))
        size += len(text) + 12
    folder = tmp / "dataset"
    write_dataset(folder, rows)
    total = sum(p.stat().st_size for p in folder.iterdir())
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        content_version(folder)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    mib = total / (1 << 20)
    print(
        f"content version of {mib:.0f} MiB in 3 CSV files: {mib / statistics.median(cpu):.0f} MiB per CPU second "
        f"({mib / statistics.median(wall):.0f} MiB/s wall)"
    )
    write = write_dataset
    if writer == "write_split":
        from shipway import write_split  # type: ignore[attr-defined,unused-ignore]

        def write(out: Path, rows: list[tuple[str, str]]) -> None:
            write_dataset(out, rows, write_split)

    found: dict[str, list[tuple[float, float]]] = {}
    for i in range(rounds):
        out = tmp / f"built-{i}"
        found.setdefault("writing", []).append(timed(lambda out=out: write(out, rows)))
        objects = ObjectStore(tmp / f"data-objects-{i}")
        found.setdefault("registering", []).append(
            timed(
                lambda out=out, objects=objects: register_folder(
                    out, name="bench", target="category", objects=objects, schema={"text": "str"}
                )
            )
        )
        shutil.rmtree(out)
        shutil.rmtree(tmp / f"data-objects-{i}")
    print(f"{mib:.0f} MiB written with {writer}, then registered")
    return found


def bench_banking77(tmp: Path, rounds: int, root: Path) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The example's real dataset step (data.py: read, clean, split, write) against the same
    step followed by registering what it wrote."""
    import importlib.util

    example = root / "examples" / "banking77"
    spec = importlib.util.spec_from_file_location("banking77_data", example / "data.py")
    assert spec is not None and spec.loader is not None
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    steps, registers = [], []
    for i in range(rounds):
        out = tmp / f"banking77-{i}"
        steps.append(timed(lambda out=out: data.build_dataset(example / "data", out)))
        objects = ObjectStore(tmp / f"b77-objects-{i}")
        registers.append(
            timed(
                lambda out=out, objects=objects: register_folder(
                    out, name="banking77", target="category", objects=objects, schema={"text": "str"}
                )
            )
        )
    return steps, registers


def bench_describe(rounds: int) -> None:
    """Describing banking77's splits (rows and label counts), the line counter against the csv
    module over every row (the counter switched off), interleaved in one process."""
    from shipway.experiments import dataset_versions, split_descriptions

    folder = Path(__file__).resolve().parent.parent / "examples" / "banking77" / "build" / "dataset"
    counter = split_descriptions._count_lines
    times: dict[str, list[float]] = {"csv module": [], "line counter": []}
    for _ in range(rounds):
        for name, count in (("csv module", lambda text, column: None), ("line counter", counter)):
            split_descriptions._count_lines = count  # type: ignore[assignment]
            started = time.process_time()
            dataset_versions.describe(folder, "category")
            times[name].append(time.process_time() - started)
    split_descriptions._count_lines = counter
    base, new = (statistics.median(times[k]) for k in ("csv module", "line counter"))
    print(f"describe banking77 (CPU, medians of {rounds}): csv module {base * 1000:.1f} ms, line counter "
          f"{new * 1000:.1f} ms ({new / base:.2f}x)")  # fmt: skip


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(only: str, tmp: Path, args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    """The raw (wall, CPU) seconds of one of listing, dataset and banking77."""
    if only == "listing":
        found = {"SQLite": bench_listing(f"sqlite:///{tmp / 'many.db'}", args.runs, args.rounds)}
        if args.postgres:
            with postgres_schema(args.postgres) as url:
                found["PostgreSQL"] = bench_listing(url, args.runs, args.rounds)
        return found
    if only == "dataset":
        return bench_dataset(tmp, args.data_mb, args.rounds, args.writer)
    steps, registers = bench_banking77(tmp, args.rounds, args.root)
    return {"data.py": steps, "registering": registers}


def show(only: str, results: dict[str, dict[str, list[tuple[float, float]]]]) -> None:
    """Medians per build, CPU and wall, and each build against the first."""
    first = next(iter(results))
    for build, found in results.items():
        parts = []
        for index, clock in ((1, "CPU"), (0, "wall")):
            medians = {k: statistics.median(t[index] for t in v) for k, v in found.items()}
            # The dataset measures come in pairs: a step, then registering what it wrote.
            names, values = list(medians), list(medians.values())
            text = ", ".join(
                f"{names[i]} {values[i] * 1000:.1f} ms"
                + (f", {names[i + 1]} {values[i + 1] * 1000:.1f} ms (+{values[i + 1] / values[i]:.1%})" if only != "listing" else "")
                for i in range(0, len(names), 1 if only == "listing" else 2)
            )  # fmt: skip
            if build != first:
                mine = {k: statistics.median(t[index] for t in v) for k, v in results[first].items()}
                text += f"; {first} against {build}: " + ", ".join(
                    f"{k} {mine[k] / medians[k]:.2f}x" for k in medians if k in mine
                )
            parts.append(f"{clock}: {text}")
        rounds = len(next(iter(found.values())))
        print(f"{only} [{build}, {rounds} rounds]: " + "; ".join(parts))


def side_by_side(only: str, args: argparse.Namespace) -> None:
    """Each build in its own processes (its src/ first on the path), alternating, `--rounds` each."""
    builds = {
        "this": (ROOT, "csv"),
        **{n: (Path(r).resolve(), "csv") for n, r in (b.split("=", 1) for b in args.build)},
    }
    if only == "dataset":
        builds["this, write_split"] = (ROOT, "write_split")
    results: dict[str, dict[str, list[tuple[float, float]]]] = {name: {} for name in builds}
    for r in range(args.repeat):
        for name in builds if r % 2 == 0 else list(reversed(builds)):
            root, writer = builds[name]
            command = [sys.executable, __file__, "--only", only, "--rounds", str(args.rounds), "--emit"]
            command += ["--writer", writer]
            command += ["--root", str(root), "--runs", str(args.runs), "--data-mb", str(args.data_mb)]
            command += ["--postgres", args.postgres] if args.postgres else []
            env = {**os.environ, "PYTHONPATH": str(root / "src")}
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            for key, values in json.loads(out.strip().splitlines()[-1]).items():
                results[name].setdefault(key, []).extend(map(tuple, values))
    show(only, results)


ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--artifact-mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--data-mb", type=int, default=200)
    parser.add_argument(
        "--only", choices=["logging", "artifact", "listing", "dataset", "banking77", "describe"], default=None
    )
    parser.add_argument("--build", action="append", default=[], help="NAME=ROOT: another checkout, side by side")
    parser.add_argument("--repeat", type=int, default=3, help="processes per build with --build")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL: also list runs there (own schema)")
    parser.add_argument("--writer", choices=["csv", "write_split"], default="csv", help="how --only dataset writes")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--emit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        for only in [args.only] if args.only else ["listing", "dataset", "banking77"]:
            side_by_side(only, args)
        return
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as name:
        tmp = Path(name)
        if args.emit:
            print(json.dumps(measure(args.only, tmp, args)))
            return
        if args.only in (None, "logging"):
            bench_logging(tmp, args.rounds)
        if args.only in (None, "artifact"):
            bench_artifact(tmp, args.artifact_mb, args.rounds)
        for only in ("listing", "dataset", "banking77"):
            if args.only in (None, only):
                show(only, {"this": measure(only, tmp, args)})
        if args.only in (None, "describe"):
            bench_describe(max(args.rounds, 30))


if __name__ == "__main__":
    main()
