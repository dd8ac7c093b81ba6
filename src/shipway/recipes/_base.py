"""The recipe protocol: a named way to fit a model for a task kind, and to load what it saved.

A recipe declares its parameters (name, default, help) and implements four steps:

    fit(data, params, seed) -> model       learn from data.train (data.valid is there for early stopping)
    save(model, folder)                    write the model's files (a format that cannot run code)
    load(folder) -> model                  read them back
    predict_batch(model, inputs) -> array  probabilities (n, classes) for a classifier, scores (n, items)
                                           for a ranker (higher ranks first), values (n,) otherwise

A ranking task's targets are, for each query, the one item that answers it (an article, a
product); the items a model ranks are those its training targets name, in sorted order.

`shipway.recipes.load(folder)` reads the manifest, finds the recipe named there and returns a
`Predictor`, so a service's `load()` stays the same whichever recipe trained the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shipway.errors import RecipeError

__all__ = ["KINDS", "Data", "Param", "Predictor", "Recipe", "Split"]

# The task kinds a recipe may declare, and the score each is ranked by (higher is better).
KINDS = {
    "text-classification": "accuracy",
    "tabular-classification": "accuracy",
    "tabular-regression": "r2",
    "ranking": "ndcg",
}


@dataclass(frozen=True)
class Param:
    """One declared hyperparameter: its default, and what it does."""

    name: str
    default: Any
    help: str


@dataclass(frozen=True)
class Split:
    """Inputs (texts, or dicts of fields) and their targets (labels, or values)."""

    inputs: Sequence[Any]
    targets: Sequence[Any]

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True)
class Data:
    """A task's splits, its kind and its dataset version.

    `cache` is a folder shared by every recipe and seed run on the same data: what a recipe
    derives from the inputs alone (sentence embeddings) is computed once and kept there."""

    kind: str
    train: Split
    valid: Split
    test: Split
    version: str = ""
    cache: Path | None = None
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RecipeError(f"task kind {self.kind!r} is not one of {', '.join(KINDS)}; set the task's kind to one.")
        if (self.classifier or self.kind == "ranking") and not self.labels:
            # The classes a model can predict (or the items it can rank): those it learns from
            # (a fitted scikit-learn classifier's classes_, in the same sorted order).
            labels = sorted({str(y) for y in self.train.targets})
            object.__setattr__(self, "labels", tuple(labels))

    @property
    def classifier(self) -> bool:
        return self.kind.endswith("classification")

    def fingerprint(self, split: str) -> str:
        """A content hash of one split's inputs: the key of what is cached from them."""
        digest = hashlib.sha256(self.version.encode())
        for item in getattr(self, split).inputs:
            digest.update(repr(item).encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()[:24]


class Recipe:
    """Subclass and set the class attributes; a project's own recipe is one such file."""

    name: ClassVar[str] = ""
    # The task kinds it fits (a tabular recipe may do both classification and regression).
    kinds: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    # The `pip install 'shipway[extra]'` its libraries come from, for the error when they are missing.
    extra: ClassVar[str | None] = None
    # False when the fit draws no random numbers (lbfgs, nearest neighbours, naive Bayes): every
    # seed gives the same model, so `shipway try --seeds N` fits it once and records it N times.
    seeded: ClassVar[bool] = True

    def prepare(self, data: Data) -> None:
        """Compute what every seed shares (embeddings) before seeds run in parallel; optional."""

    def prepare_parts(self, data: Data) -> tuple[str, ...]:
        """Parts of `prepare` that can run apart, in other processes at once, each leaving its
        result in `data.cache` (one split's embeddings), longest first; optional. A part's name
        says what it computes: recipes that name the same part share it. `shipway try` runs each
        with `prepare_part` in its workers, then `prepare`, which finds them done."""
        return ()

    def prepare_part(self, data: Data, part: str) -> None:
        """Compute one of `prepare_parts(data)`."""
        raise RecipeError(
            f"recipe {self.name!r} names no part {part!r} to prepare; its parts: {self.prepare_parts(data)}"
        )

    def fit(self, data: Data, params: Mapping[str, Any], seed: int) -> Any:
        raise NotImplementedError

    def save(self, model: Any, folder: Path) -> None:
        raise NotImplementedError

    def load(self, folder: Path) -> Any:
        raise NotImplementedError

    def predict_batch(self, model: Any, inputs: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError

    def shared_bytes(self) -> int:
        """Bytes the model needs beyond its folder (an installed encoder), for the model size."""
        return 0

    def resolve(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The declared defaults overridden by `given`; an unknown name is refused."""
        values = {p.name: p.default for p in self.params}
        for key, value in (given or {}).items():
            if key not in values:
                known = ", ".join(values) or "none"
                raise RecipeError(
                    f"recipe {self.name!r} has no parameter {key!r} (given {key}={value!r}); its parameters: {known}. "
                    f"See `shipway recipes {self.name}`."
                )
            default = values[key]
            values[key] = _like(default, value, self.name, key)
        return values


def _like(default: Any, value: Any, recipe: str, key: str) -> Any:
    """A value given as text on the command line, converted to the default's type."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        return type(default)(value)
    except ValueError:
        raise RecipeError(
            f"recipe {recipe!r} parameter {key!r} takes a {type(default).__name__} (default {default!r}), "
            f"not {value!r}."
        ) from None


class Predictor:
    """A loaded model and its recipe, shaped like a scikit-learn estimator for services:
    `predict_proba(inputs)` and `classes_` for classifiers, `predict(inputs)` for every kind."""

    def __init__(self, recipe: Recipe, model: Any, manifest: Mapping[str, Any]) -> None:
        self.recipe = recipe
        self.model = model
        self.manifest = dict(manifest)
        self.classes_ = np.asarray(self.manifest.get("labels") or [], dtype=object)

    def predict_proba(self, inputs: Sequence[Any]) -> np.ndarray:
        if not len(self.classes_):
            raise RecipeError(
                f"the model of recipe {self.recipe.name!r} is not a classifier: it has no probabilities; call predict()."
            )
        return self.recipe.predict_batch(self.model, list(inputs))

    def predict(self, inputs: Sequence[Any]) -> np.ndarray:
        out = self.recipe.predict_batch(self.model, list(inputs))
        if len(self.classes_):
            return self.classes_[np.asarray(out).argmax(axis=1)]
        return np.asarray(out)

    def rank(self, inputs: Sequence[Any], k: int = 10) -> list[list[tuple[str, float]]]:
        """For each input, its `k` best items (or classes) with their scores, best first."""
        if not len(self.classes_):
            raise RecipeError(f"the model of recipe {self.recipe.name!r} ranks nothing: it has no items or classes.")
        scores = np.asarray(self.recipe.predict_batch(self.model, list(inputs)), dtype=float)
        k = max(1, min(int(k), scores.shape[1]))
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [
            [(str(self.classes_[j]), float(row[j])) for j in order] for row, order in zip(scores, best, strict=True)
        ]

    def __repr__(self) -> str:
        return f"Predictor(recipe={self.recipe.name!r}, version={self.manifest.get('version')!r})"
