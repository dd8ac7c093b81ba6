"""Fit a recipe on a task's data, score it, and write its artifacts folder with the manifest.

The folder is what a service loads: `shipway.recipes.load(folder)` finds the recipe named in
the manifest. Its version is named by the digest of its files, so the same bytes are the same
version wherever they are copied.
"""

from __future__ import annotations

import hashlib
import platform
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shipway.core.artifacts import MANIFEST, file_sha256, verify_artifacts, write_manifest
from shipway.errors import ArtifactError, RecipeError
from shipway.recipes._base import KINDS, Data, Predictor, Recipe
from shipway.recipes._catalog import get

__all__ = ["RANK_K", "artifacts_digest", "load", "ranking_scores", "score", "train", "true_ranks"]

# Items timed one at a time for the served latency per item (after one warm-up call).
_LATENCY_ITEMS = 30


# The cut-off of a ranking's NDCG and hit rate.
RANK_K = 10


def true_ranks(labels: tuple[str, ...], predicted: np.ndarray, targets: Any) -> np.ndarray:
    """For each row, the rank (1 = first) of its target among the scored items; 0 when the target is
    not an item the model knows. Ties rank the target after the items that tie with it."""
    scores = np.asarray(predicted, dtype=float)
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros(len(scores), dtype=int)
    for row, target in enumerate(targets):
        j = index.get(str(target))
        if j is not None:
            out[row] = int(np.sum(scores[row] >= scores[row, j]))
    return out


def ranking_scores(labels: tuple[str, ...], predicted: np.ndarray, targets: Any) -> dict[str, float]:
    """NDCG and hit rate at RANK_K, and MRR, with one relevant item per query."""
    ranks = true_ranks(labels, predicted, targets)
    found = (ranks >= 1) & (ranks <= RANK_K)
    gains = np.where(found, 1.0 / np.log2(np.maximum(ranks, 1) + 1), 0.0)
    return {
        "ndcg": float(gains.mean()) if len(ranks) else 0.0,
        "mrr": float(np.where(ranks >= 1, 1.0 / np.maximum(ranks, 1), 0.0).mean()) if len(ranks) else 0.0,
        "hit_rate": float(found.mean()) if len(ranks) else 0.0,
    }


def score(kind: str, labels: tuple[str, ...], predicted: np.ndarray, targets: Any) -> float:
    """The kind's score (KINDS): accuracy of the most likely class, NDCG at RANK_K of a ranking,
    or R² of the values."""
    if kind == "ranking":
        return ranking_scores(labels, predicted, targets)["ndcg"]
    if kind.endswith("classification"):
        chosen = np.asarray(labels, dtype=object)[np.asarray(predicted).argmax(axis=1)]
        return float(np.mean(chosen == np.asarray([str(t) for t in targets], dtype=object)))
    y = np.asarray(targets, dtype=float)
    residual = float(np.sum((y - np.asarray(predicted, dtype=float)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return 1.0 - residual / total


def _predict_split(recipe: Recipe, model: Any, data: Data, split: str) -> np.ndarray:
    cached = getattr(recipe, "predict_cached", None)
    if cached is not None:
        return np.asarray(cached(model, data, split))
    return recipe.predict_batch(model, list(getattr(data, split).inputs))


def _latency_ms(recipe: Recipe, model: Any, inputs: list[Any]) -> float | None:
    items = inputs[: _LATENCY_ITEMS + 1]
    if len(items) < 2:
        return None
    recipe.predict_batch(model, items[:1])  # warm-up: lazy imports, the encoder's first call
    times = []
    for item in items[1:]:
        started = time.perf_counter()
        recipe.predict_batch(model, [item])
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def artifacts_digest(folder: Path) -> str:
    """sha256 over the names and contents of every file but the manifest: the version's name."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != MANIFEST):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def train(
    recipe: Recipe,
    data: Data,
    folder: Path,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit, score on valid and test, save into `folder` and write its manifest; return the manifest."""
    if data.kind not in recipe.kinds:
        raise RecipeError(
            f"recipe {recipe.name!r} fits {', '.join(recipe.kinds)}, not the task's kind {data.kind!r}; "
            "choose a recipe of that kind (`shipway recipes`)."
        )
    values = recipe.resolve(params)
    cpu_started = time.process_time()  # this process's threads: a worker of `shipway try` runs nothing else
    started = time.perf_counter()
    model = recipe.fit(data, values, seed)
    fit_seconds = time.perf_counter() - started
    fit_cpu_seconds = time.process_time() - cpu_started
    metric = KINDS[data.kind]
    metrics = {}
    for split in ("valid", "test"):
        if len(getattr(data, split)):
            predicted = _predict_split(recipe, model, data, split)
            targets = getattr(data, split).targets
            if data.kind == "ranking":  # NDCG first (the kind's score), MRR and hit rate beside it
                for name, value in ranking_scores(data.labels, predicted, targets).items():
                    metrics[f"{split}_{name}"] = round(value, 4)
                continue
            metrics[f"{split}_{metric}"] = round(score(data.kind, data.labels, predicted, targets), 4)
    latency = _latency_ms(recipe, model, list(data.valid.inputs) or list(data.test.inputs))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    recipe.save(model, folder)
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST]
    digest = artifacts_digest(folder)
    manifest = {
        "version": f"{recipe.name}-{digest[:12]}",
        "digest": digest,
        "recipe": {"name": recipe.name, "defined_in": type(recipe).__module__},
        "kind": data.kind,
        "params": values,
        "seed": seed,
        "dataset_version": data.version,
        "metric": metric,
        "metrics": metrics,
        "fit_seconds": round(fit_seconds, 2),
        "fit_cpu_seconds": round(fit_cpu_seconds, 2),
        # The fit, scoring valid and test, the latency and saving: the whole of this call's CPU.
        "cpu_seconds": round(time.process_time() - cpu_started, 2),
        "latency_ms": latency,
        "model_bytes": sum(p.stat().st_size for p in files) + recipe.shared_bytes(),
        "labels": list(data.labels),
        "libraries": {"python": platform.python_version(), "numpy": np.__version__},
        **dict(meta or {}),
    }
    write_manifest(folder, manifest)
    return manifest


def load(folder: Path, project: Path | None = None) -> Predictor:
    """The model in `folder`, checked against its manifest, with the recipe that saved it.

    A service's `load()` is this one call, whichever recipe trained the model."""
    folder = Path(folder)
    manifest = verify_artifacts(folder)
    if manifest is None:
        raise ArtifactError(f"no model in {folder}: the folder is missing or empty; train one (`shipway try`).")
    named = manifest.get("recipe")
    if not isinstance(named, dict) or not isinstance(named.get("name"), str):
        raise RecipeError(
            f"{folder / MANIFEST} names no recipe (its 'recipe' is {named!r}); it was not written by a recipe. "
            "Load it with the code that trained it, or retrain it with `shipway try`."
        )
    recipe = get(named["name"], project)
    return Predictor(recipe, recipe.load(folder), manifest)
