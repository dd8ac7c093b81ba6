"""`shipway data build` and `shipway train`: a project's steps, registered and tracked.

`build_dataset` runs the dataset step and registers what it wrote. `train` runs the training
step as a tracked run: the run records the code, environment, configuration, seeds and
dataset before the step starts; the step's own code logs its metrics through the run API;
then the model's answers on the held-out examples (core/held_out.py, what the parity gate
checks a deploy against), its artifacts, size, and latency through the service's own
pipeline are recorded, with the duration and the step's log.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from shipway.core.artifacts import MANIFEST, write_manifest
from shipway.core.held_out import HELD_OUT, run_held_out, write_held_out
from shipway.core.pipeline import Pipeline
from shipway.core.service import Service, read_ids
from shipway.core.settings import Settings
from shipway.errors import DataError, RunError, ShipwayError
from shipway.experiments.dataset_versions import (
    content_version,
    materialize,
    read_rows,
    register_folder,
    split_files,
    split_for,
)
from shipway.experiments.provenance import code_state
from shipway.experiments.steps import input_fields, run_step
from shipway.experiments.tracking import ENV, Run, open_run
from shipway.store.base import Store
from shipway.store.datasets import DatasetRecord, TaskRecord
from shipway.store.objects import ObjectStore
from shipway.store.runs import RunRecord

__all__ = [
    "absolute_store_url",
    "build_dataset",
    "current_dataset",
    "dataset_name",
    "measure_latency",
    "task_for",
    "train",
]

Echo = Callable[[str], None]
LATENCY_ITEMS = 200  # validation inputs timed one at a time, and in batches


def dataset_name(settings: Settings) -> str:
    return str(settings["data.dataset"] or settings["name"])


def build_dataset(
    settings: Settings, service: Service, store: Store, objects: ObjectStore, *, echo: Echo | None = None
) -> DatasetRecord:
    """Run the dataset step (`data.command`) and register the dataset it wrote."""
    root = settings.root
    command = settings["data.command"]
    say = echo or (lambda _: None)
    say(f"[1/2] dataset step: {command}")
    result = run_step(command, "data.command", root, echo=echo)
    if not result.ok:
        raise DataError(
            f"the dataset step {command!r} (the data.command setting) exited with code {result.returncode}; "
            f"its last lines:\n{result.tail.rstrip()}"
        )
    say(f"[2/2] registering {settings['data.dir']} (step took {result.seconds:.1f} s)")
    return register(settings, service, store, objects, command=command, meta={"step_seconds": round(result.seconds, 3)})


def register(
    settings: Settings,
    service: Service,
    store: Store,
    objects: ObjectStore,
    *,
    command: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> DatasetRecord:
    """Register the dataset now in `data.dir` (a registered version is returned as it is)."""
    code = code_state(settings.root)
    record = register_folder(
        settings.path("data.dir"),
        name=dataset_name(settings),
        target=settings["data.target"] or None,
        objects=objects,
        schema=input_fields(service.schemas()[0].hint) or None,
        code_commit=code["commit"],
        command=command,
        meta={"dirty": code["dirty"], **(meta or {})},
    )
    return store.register_dataset(record)


def current_dataset(settings: Settings, service: Service, store: Store, objects: ObjectStore) -> DatasetRecord:
    """The dataset in `data.dir`, registered if it was not yet."""
    version = content_version(settings.path("data.dir"))
    try:
        return store.get_dataset(version, name=dataset_name(settings))
    except ShipwayError:
        return register(settings, service, store, objects)


def task_for(settings: Settings, dataset: DatasetRecord) -> TaskRecord:
    """The task a dataset version defines with the project's target and metric."""
    target, metric = settings["data.target"], settings["data.metric"]
    splits = {role: name for role in ("train", "valid", "test") if (name := split_for(dataset.rows, role))}
    return TaskRecord(
        name=f"{dataset.name}@{dataset.version[:8]}:{target}:{metric}",
        dataset=dataset.name,
        dataset_version=dataset.version,
        target=target,
        splits=splits,
        metric=metric,
    )


def train(
    settings: Settings,
    service: Service,
    store: Store,
    objects: ObjectStore,
    *,
    overrides: Mapping[str, Any] | None = None,
    seeds: Mapping[str, int] | None = None,
    dataset_version: str | None = None,
    name: str | None = None,
    command: str | None = None,
    parent: str | None = None,
    store_url: str | None = None,
    echo: Echo | None = None,
) -> RunRecord:
    """Run the training step as a tracked run; the finished (or failed) run's record.

    `store_url` is the store the step's own code writes to (default: the project's)."""
    say = echo or (lambda _: None)
    root = settings.root
    if dataset_version is None:
        dataset = current_dataset(settings, service, store, objects)
        folder = settings.path("data.dir")
    else:
        dataset = store.get_dataset(dataset_version)
        folder = settings.path("data.dir")
        if not folder.is_dir() or content_version(folder) != dataset.version:
            folder = root / ".shipway" / "datasets" / dataset.version
            if not folder.is_dir() or content_version(folder) != dataset.version:
                materialize(dataset, objects, folder)
    task = store.define_task(task_for(settings, dataset))
    seeds = {"PYTHONHASHSEED": 0, **(seeds or {})}
    say(f"[1/4] dataset {dataset.name} {dataset.version} ({sum(dataset.rows.values()):,} rows), task {task.name}")
    run = open_run(
        store,
        objects,
        project=settings["name"],
        root=root,
        name=name,
        task=task.name,
        dataset_version=dataset.version,
        command=command,
        overrides=overrides,
        seeds=seeds,
        flush_interval_s=settings["experiments.flush_interval_s"],
        parent=parent,
        mlflow_uri=settings["experiments.mlflow_uri"],
    )
    run.record.seeds["PYTHONHASHSEED"] = int(seeds["PYTHONHASHSEED"])
    run.set(seeds=dict(run.record.seeds))
    run.flush()
    artifacts = settings.path("artifacts")
    env = {
        ENV["run"]: run.id,
        ENV["overrides"]: orjson.dumps(dict(overrides or {})).decode(),
        ENV["seeds"]: orjson.dumps(dict(seeds)).decode(),
        ENV["dataset_dir"]: str(folder),
        ENV["dataset_version"]: dataset.version,
        ENV["artifacts"]: str(artifacts),
        ENV["objects"]: str(objects.root),
        "SHIPWAY_STORE_URL": store_url or absolute_store_url(settings["store.url"], settings.root),
        "PYTHONHASHSEED": str(seeds["PYTHONHASHSEED"]),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="shipway-run-") as tmp:
            log = Path(tmp) / "log.txt"
            say(f"[2/4] training step: {settings['train.command']}")
            result = run_step(settings["train.command"], "train.command", root, env=env, log=log, echo=echo)
            run.log_artifact(log, "log.txt")
            if not result.ok:
                error = f"the training step {settings['train.command']!r} exited with code {result.returncode}:\n{result.tail.rstrip()}"
                run.end("failed", error)
                return store.get_run(run.id)
            _check_artifacts(artifacts)
            service.loaded = False  # the artifacts are new: load them again
            pipeline = service.setup(artifacts, {"service": settings["name"], **read_ids(artifacts)})
            split, inputs = held_out_inputs(service, settings, folder, dataset)
            say(f"[3/5] predicting the {len(inputs):,} held-out examples ({split or 'no held-out split'})")
            if split is not None:
                write_held_out(artifacts, split, dataset.version, run_held_out(pipeline, inputs))
            say(f"[4/5] recording the model's artifacts from {artifacts}")
            _record_artifacts(run, artifacts, dataset)
            say("[5/5] measuring latency through the service's pipeline")
            run.log_metrics(measure_latency(pipeline, settings, [item for _, item in inputs[:LATENCY_ITEMS]]))
            run.log_metric("train_seconds", result.seconds)
        run.end()
    except BaseException as exc:
        run.end("failed", f"{type(exc).__name__}: {exc}")
        raise
    return store.get_run(run.id)


def _check_artifacts(artifacts: Path) -> None:
    if not artifacts.is_dir():
        raise RunError(
            f"the training step finished but wrote no artifacts folder {str(artifacts)!r}; it must write the "
            f"model there (the `artifacts` setting; under shipway train it is also ${ENV['artifacts']})"
        )


def _record_artifacts(run: Run, artifacts: Path, dataset: DatasetRecord) -> None:
    manifest = artifacts / MANIFEST
    # The ids the service tags each prediction with must name this run and its data; the manifest
    # is written again through write_manifest, so it lists (and signs) what this run produced,
    # the held-out predictions included.
    data = orjson.loads(manifest.read_bytes()) if manifest.is_file() else {}
    listed = data.get("files", {})
    if (
        data.get("run_id") != run.id
        or data.get("dataset_version") != dataset.version
        or "files" not in data
        or ((artifacts / HELD_OUT).is_file() and HELD_OUT not in listed)
    ):
        write_manifest(artifacts, {**data, "run_id": run.id, "dataset_version": dataset.version})
    size = 0
    for path in sorted(p for p in artifacts.rglob("*") if p.is_file()):
        run.log_artifact(path, f"artifacts/{path.relative_to(artifacts).as_posix()}")
        size += path.stat().st_size
    run.log_metric("model_size_bytes", size)
    run.set(model_version=read_ids(artifacts)["model_version"])


def held_out_inputs(
    service: Service, settings: Settings, folder: Path, dataset: DatasetRecord
) -> tuple[str | None, list[tuple[int, dict[str, Any]]]]:
    """The held-out split's name (test, else validation) and its first `deploy.parity_examples`
    inputs with their row numbers, as the service's input fields; (None, []) without such a split."""
    files = split_files(folder)
    split = split_for(files, "test") or split_for(files, "valid")
    if split is None:
        return None, []
    fields = list(input_fields(service.schemas()[0].hint)) or [
        c for c in dataset.meta.get("columns", []) if c != dataset.target
    ]
    limit = settings["deploy.parity_examples"]
    inputs: list[tuple[int, dict[str, Any]]] = []
    for number, row in enumerate(read_rows(files[split])):
        if number >= limit:
            break
        inputs.append((number, {f: row[f] for f in fields if f in row}))
    return split, inputs


def measure_latency(pipeline: Pipeline, settings: Settings, items: list[dict[str, Any]]) -> dict[str, float]:
    """Milliseconds per item through the service's pipeline: one at a time (median and mean) and
    in batches of `batching.max_batch_size`, on up to 200 held-out inputs."""
    if not items:
        return {}
    pipeline.run(items[0])  # warm up
    singles = []
    for item in items:
        started = time.perf_counter()
        pipeline.run(item)
        singles.append((time.perf_counter() - started) * 1000)
    size = max(1, int(settings["batching.max_batch_size"]))
    started = time.perf_counter()
    for start in range(0, len(items), size):
        pipeline.run_batch(items[start : start + size])
    batched = (time.perf_counter() - started) * 1000 / len(items)
    return {
        "latency_ms_p50": statistics.median(singles),
        "latency_ms_mean": statistics.fmean(singles),
        "latency_ms_batched_per_item": batched,
        "latency_batch_size": float(size),
    }


def absolute_store_url(url: str, root: Path) -> str:
    """`url` with a relative SQLite path made absolute against `root`, for a child in another folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((root / url[len(prefix) :]).resolve())
    return url
