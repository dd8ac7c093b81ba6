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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shipway.core.service import Service
from shipway.core.settings import Settings
from shipway.errors import ConfigError, RecipeError
from shipway.experiments.dataset_versions import read_rows, split_files, split_for
from shipway.experiments.steps import input_fields
from shipway.experiments.tracking import open_run
from shipway.experiments.training import current_dataset, task_for
from shipway.recipes import Data, Split, get, train
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


def _fit(
    recipe_name: str, project: str, data: Data, params: Mapping[str, Any], seed: int, folder: str, run_id: str
) -> dict:
    """In a worker process: fit one seed and write its folder; the manifest."""
    recipe = get(recipe_name, Path(project))
    return train(recipe, data, Path(folder), params, seed, meta={"run_id": run_id})


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
    for name, recipe in recipes.items():
        started = time.perf_counter()
        recipe.prepare(data)
        if time.perf_counter() - started > 0.5:
            say(f"prepared {name} in {time.perf_counter() - started:.1f} s (shared by its seeds)")
    chosen = list(seed_values) if seed_values is not None else list(range(seeds))
    total = len(trials) * len(chosen)
    pending: dict[concurrent.futures.Future[dict], Any] = {}
    finished: list[RunRecord] = []
    context = multiprocessing.get_context("spawn")  # no fork after torch or BLAS threads started
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool:
        for trial in trials:
            params = recipes[trial.recipe].resolve(trial.params)
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
                folder = root / ".shipway" / "tries" / run.id
                future = pool.submit(_fit, trial.recipe, str(root), data, params, seed, str(folder), run.id)
                pending[future] = (run, trial.recipe, seed, folder, time.perf_counter())
        for future in concurrent.futures.as_completed(pending):
            run, name, seed, folder, started = pending[future]
            done = len(finished) + 1
            try:
                manifest = future.result()
            except Exception as exc:
                run.end("failed", f"{type(exc).__name__}: {exc}")
                say(f"[{done}/{total}] {name} seed {seed}: failed: {exc}")
            else:
                _record(run, manifest, folder)
                figures = ", ".join(f"{k} {v:.4f}" for k, v in manifest["metrics"].items())
                say(f"[{done}/{total}] {name} seed {seed}: {figures}, fit {manifest['fit_seconds']:.1f} s")
            finished.append(store.get_run(run.id))
    return finished


def _record(run: Any, manifest: Mapping[str, Any], folder: Path) -> None:
    metrics = dict(manifest["metrics"])
    metrics["fit_seconds"] = manifest["fit_seconds"]
    metrics["model_size_bytes"] = manifest["model_bytes"]
    if manifest.get("latency_ms") is not None:
        metrics["latency_ms_p50"] = manifest["latency_ms"]
    run.log_metrics(metrics)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        run.log_artifact(path, f"artifacts/{path.relative_to(folder).as_posix()}")
    run.set(model_version=manifest["version"])
    run.end()
