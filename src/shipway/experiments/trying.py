"""`shipway try`: run recipes on the project's task, several seeds each, in parallel, each as a run.

The parent process reads the dataset once, lets each recipe prepare what its seeds share
(MiniLM embeddings, cached per dataset version), then fits every (recipe, seed) in a pool of
worker processes. Workers only fit, score and write an artifacts folder; the parent records
each as a tracked run (code, environment, dataset, task, parameters, metrics, artifacts), so
the store is written from one process.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shipway.core.artifacts import write_manifest
from shipway.core.held_out import run_held_out, write_held_out
from shipway.core.service import Service
from shipway.core.settings import Settings
from shipway.errors import ConfigError, RecipeError
from shipway.experiments import _workers
from shipway.experiments.dataset_versions import read_rows, split_files, split_for
from shipway.experiments.steps import input_fields
from shipway.experiments.tracking import open_run
from shipway.experiments.training import current_dataset, held_out_inputs, task_for
from shipway.project import Project
from shipway.recipes import Data, Recipe, Split, get
from shipway.rules.live import LiveRules
from shipway.store.base import Store
from shipway.store.datasets import DatasetRecord
from shipway.store.objects import ObjectStore
from shipway.store.runs import RunRecord

__all__ = ["Trial", "task_data", "try_recipes"]

Echo = Callable[[str], None]
_REGRESSION_METRICS = frozenset({"r2", "rmse", "mae"})
# A ranking task: each row's target is the one item that answers its query (recipes record all three).
_RANKING_METRICS = frozenset({"ndcg", "mrr", "hit_rate"})


@dataclass(frozen=True)
class Trial:
    """One recipe with its parameter overrides."""

    recipe: str
    params: Mapping[str, Any]


def task_data(settings: Settings, service: Service, dataset: DatasetRecord) -> Data:
    """The splits of `data.dir` as recipe data: the service's input fields, the target, the kind.

    One text field makes a text task (the inputs are the texts); several fields a tabular one
    (the inputs are dicts). The kind is a classification unless `data.metric` is a regression's, or a
    ranking's (ndcg, mrr or hit_rate: the target names the item that answers the text query)."""
    folder = settings.path("data.dir")
    files = split_files(folder)
    target = settings["data.target"]
    fields = list(input_fields(service.schemas()[0].hint)) or [
        c for c in dataset.meta.get("columns", []) if c != target
    ]
    text = len(fields) == 1 and input_fields(service.schemas()[0].hint).get(fields[0]) == "str"
    regression = settings["data.metric"] in _REGRESSION_METRICS
    kind = "text-classification" if text else ("tabular-regression" if regression else "tabular-classification")
    if settings["data.metric"] in _RANKING_METRICS:
        if not text:
            raise ConfigError(
                f"data.metric = {settings['data.metric']!r} makes this a ranking task, whose recipes rank items for "
                f"a text query; the service's input has the fields {', '.join(fields)}, not one text field. "
                "Use a classification or regression metric, or a one-field text input."
            )
        kind = "ranking"

    def read(role: str) -> Split:
        name = split_for(files, role)
        if name is None:
            return Split([], [])
        rows = list(read_rows(files[name]))
        inputs = [r[fields[0]] for r in rows] if text else [{f: r.get(f) for f in fields} for r in rows]
        targets = [r[target] if not regression else float(r[target]) for r in rows]
        return Split(inputs, targets)

    return Data(
        kind,
        read("train"),
        read("valid"),
        read("test"),
        version=dataset.version,
        cache=settings.root / ".shipway" / "cache",
    )


def try_recipes(
    settings: Settings,
    service: Service,
    store: Store,
    objects: ObjectStore,
    trials: Sequence[Trial],
    *,
    seeds: int = 1,
    jobs: int = 1,
    command: str | None = None,
    echo: Echo | None = None,
    seed_values: Sequence[int] | None = None,
    parent: str | None = None,
) -> list[RunRecord]:
    """Every trial with seeds 0..seeds-1 (or `seed_values`), `jobs` at a time; the runs, finished
    or failed. `parent` names the run these repeat (`shipway reproduce`)."""
    say = echo or (lambda _: None)
    root = settings.root
    recipes = {t.recipe: get(t.recipe, root) for t in trials}  # an unknown name fails before any work
    for trial in trials:
        recipes[trial.recipe].resolve(trial.params)  # so does an unknown parameter
    dataset = current_dataset(settings, service, store, objects)
    task = store.define_task(task_for(settings, dataset))
    data = task_data(settings, service, dataset)
    for name, recipe in recipes.items():
        if data.kind not in recipe.kinds:
            raise RecipeError(
                f"recipe {name!r} fits {', '.join(recipe.kinds)}; this project's task is {data.kind} "
                f"(task {task.name}). Choose recipes of that kind: `shipway recipes`."
            )
    say(f"task {task.name}: {data.kind}, {len(data.train)}/{len(data.valid)}/{len(data.test)} rows")
    chosen = list(seed_values) if seed_values is not None else list(range(seeds))
    split, inputs = held_out_inputs(service, settings, settings.path("data.dir"), dataset)
    held_out = _HeldOut(Project(service, settings), dataset, split, inputs)
    total = len(trials) * len(chosen)
    pending: dict[concurrent.futures.Future[dict], tuple[list[tuple[Any, int, Path]], str]] = {}
    finished: list[RunRecord] = []
    context = multiprocessing.get_context("spawn")  # no fork after torch or BLAS threads started
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))  # no more threads than cores in all
    # Recipes with nothing to prepare fit while the others prepare (the MiniLM embeddings).
    ready = [t for t in trials if type(recipes[t.recipe]).prepare is Recipe.prepare]
    later = [t for t in trials if t not in ready]
    # What can be prepared in parts (a split's embeddings each) goes to the workers first, the
    # longest part first, ahead of the fits that need nothing prepared: the workers share it, one
    # thread each, and the parent then prepares from the cache they filled.
    named = {t.recipe: recipes[t.recipe].prepare_parts(data) for t in later}
    parts: dict[str, str] = {}
    for name, its in named.items():
        for part in its:
            parts.setdefault(part, name)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=max(1, jobs), mp_context=context, initializer=_workers.start, initargs=(threads,)
    ) as pool:
        started = time.perf_counter()
        preparing = {
            part: pool.submit(_workers.prepare_part, name, str(root), data, part) for part, name in parts.items()
        }
        for group in (ready, later):
            for name in dict.fromkeys(t.recipe for t in group):
                # A part is counted for the first recipe that names it; a failed part raises here.
                mine = [preparing.pop(p) for p in named.get(name, ()) if p in preparing]
                in_workers = sum(f.result() for f in mine)
                cpu, here = time.process_time(), time.perf_counter()
                recipes[name].prepare(data)
                if mine or time.perf_counter() - here > 0.5:
                    say(
                        f"prepared {name} {time.perf_counter() - started:.1f} s after the start: "
                        + (f"{len(mine)} parts in the workers, {in_workers:.1f} CPU-s, then " if mine else "")
                        + f"{time.process_time() - cpu:.1f} CPU-s here (shared by its seeds)"
                    )
            for trial in group:
                recipe = recipes[trial.recipe]
                params = recipe.resolve(trial.params)
                runs = []
                for seed in chosen:
                    run = open_run(
                        store,
                        objects,
                        project=settings["name"],
                        root=root,
                        name=trial.recipe,
                        task=task.name,
                        recipe=trial.recipe,
                        dataset_version=dataset.version,
                        command=command,
                        overrides=dict(trial.params),
                        seeds={"seed": seed},
                        tags={"params": orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode()},
                        flush_interval_s=settings["experiments.flush_interval_s"],
                        parent=parent,
                    )
                    run.log_params(params)
                    run.flush()
                    runs.append((run, seed, root / ".shipway" / "tries" / run.id))
                # A recipe whose fit draws no random numbers fits once: its other seeds get the same model.
                for fitted in [runs] if not recipe.seeded else [[r] for r in runs]:
                    run, seed, folder = fitted[0]
                    future = pool.submit(_workers.fit, trial.recipe, str(root), data, params, seed, str(folder), run.id)
                    pending[future] = (fitted, trial.recipe)
        for future in concurrent.futures.as_completed(pending):
            fitted, name = pending[future]
            try:
                manifest = future.result()
            except Exception as exc:
                for run, seed, _ in fitted:
                    run.end("failed", f"{type(exc).__name__}: {exc}")
                    finished.append(store.get_run(run.id))
                    say(f"[{len(finished)}/{total}] {name} seed {seed}: failed: {exc}")
                continue
            first, _, first_folder = fitted[0]
            held_out.record(first_folder, manifest, say)
            for run, seed, folder in fitted:
                if folder != first_folder:
                    shutil.copytree(first_folder, folder)
                    same = {**manifest, "run_id": run.id, "seed": seed, "same_fit_as": first.id}
                    manifest = write_manifest(folder, {k: v for k, v in same.items() if k != "files"})
                _record(run, manifest, folder)
                figures = ", ".join(f"{k} {v:.4f}" for k, v in manifest["metrics"].items())
                again = (
                    f" (the fit of seed {fitted[0][1]}: this recipe draws no random numbers)"
                    if run is not first
                    else ""
                )
                finished.append(store.get_run(run.id))
                say(
                    f"[{len(finished)}/{total}] {name} seed {seed}: {figures}, fit {manifest['fit_seconds']:.1f} s{again}"
                )
    held_out.project.close()
    return finished


class _HeldOut:
    """The project's service on each tried model, answering the held-out examples as `shipway train`
    records them (core/held_out.py): the parity gate checks a deploy of the folder against them."""

    def __init__(self, project: Project, dataset: DatasetRecord, split: str | None, inputs: list) -> None:
        self.project = project
        self.dataset = dataset
        self.split = split
        self.inputs = inputs

    def record(self, folder: Path, manifest: dict[str, Any], say: Echo) -> None:
        if self.split is None:
            return
        cpu = time.process_time()  # the parent's: it does nothing else meanwhile
        try:
            pipeline = self.project.build(LiveRules(), folder, fresh=True)
            answers = run_held_out(pipeline, self.inputs)
        except Exception as exc:  # the service cannot serve this model: the run's figures still stand
            say(f"held-out answers not recorded for {folder.name} (a deploy of it skips the parity gate): "
                f"the service failed on the model: {type(exc).__name__}: {exc}")  # fmt: skip
            return
        write_held_out(folder, self.split, self.dataset.version, answers)
        manifest["held_out_cpu_seconds"] = round(time.process_time() - cpu, 2)
        # Listed and hashed with the model's files (the version stays the digest of the model's own).
        manifest.update(write_manifest(folder, {k: v for k, v in manifest.items() if k != "files"}))


def _record(run: Any, manifest: Mapping[str, Any], folder: Path) -> None:
    metrics = dict(manifest["metrics"])
    metrics["fit_seconds"] = manifest["fit_seconds"]
    metrics["fit_cpu_seconds"] = manifest["fit_cpu_seconds"]
    metrics["model_size_bytes"] = manifest["model_bytes"]
    if manifest.get("latency_ms") is not None:
        metrics["latency_ms_p50"] = manifest["latency_ms"]
    run.log_metrics(metrics)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        run.log_artifact(path, f"artifacts/{path.relative_to(folder).as_posix()}")
    run.set(model_version=manifest["version"])
    run.end()
