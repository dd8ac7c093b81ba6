"""The worker processes of `shipway try`: what runs in them imports the recipes and no more.

A worker is started fresh (spawned, not forked) and imports the module of the function it runs:
this one, not `trying` with the store, the service and the tracking it pulls in (about a second
more of each worker's start on the shared two-core machine).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipway.recipes import Data, get, train

__all__ = ["fit", "prepare_part", "start"]


def start(threads: int) -> None:
    """A worker's thread pools (BLAS, OpenMP, PyTorch) capped so that the workers share the cores."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)


def fit(
    recipe_name: str, project: str, data: Data, params: Mapping[str, Any], seed: int, folder: str, run_id: str
) -> dict:
    """Fit one seed and write its folder; the manifest."""
    recipe = get(recipe_name, Path(project))
    return train(recipe, data, Path(folder), params, seed, meta={"run_id": run_id})


def prepare_part(recipe_name: str, project: str, data: Data, part: str) -> float:
    """Compute one part of what a recipe prepares (into the data's cache); the CPU seconds it took."""
    started = time.process_time()
    get(recipe_name, Path(project)).prepare_part(data, part)
    return time.process_time() - started
