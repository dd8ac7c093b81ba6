"""An ensemble recipe: the weighted mean of other recipes' probabilities, weights chosen on validation.

Each member is fitted on the training split with its own defaults (or `<member>.<param>` given
in `member_params`), and its validation and test probabilities are kept beside its files in the
task's cache (`.shipway/cache/members/`), keyed by the recipe, its parameters, the seed, the
dataset version and a hash of every split's inputs: another ensemble over the same member, or
the same one run again, reads them instead of fitting again, which matters for the fine-tuned
MiniLM (most of an hour on two shared cores).

The weights are the point of a grid on the simplex (step `step`) with the best validation
accuracy, ties broken by the validation log-likelihood; the test split plays no part in the
choice. With `refit` the named members are then fitted again on training and validation
together (cheap ones: the validation rows are 10% more data) before they are saved.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipway.errors import RecipeError
from shipway.recipes._base import Data, Param, Recipe, Split
from shipway.recipes._catalog import catalog, get

__all__ = ["Ensemble", "choose_weights", "fitted_member"]

_SCORES = ("valid", "test")
_MEMBERS_FILE = "ensemble.json"


@dataclass
class _Member:
    name: str
    recipe: Recipe
    model: Any
    weight: float
    scores: dict[str, np.ndarray]  # the split's probabilities, when fitted on this task's data


@dataclass
class _Model:
    members: list[_Member]
    fingerprints: dict[str, str]  # the splits whose cached scores the members hold


def _member_key(name: str, params: Mapping[str, Any], seed: int, data: Data) -> str:
    digest = hashlib.sha256(json.dumps([name, dict(params), seed, data.version], sort_keys=True, default=str).encode())
    for split in ("train", *_SCORES):
        digest.update(data.fingerprint(split).encode())
    for target in data.train.targets:  # the labels too: relabelled rows are other data
        digest.update(repr(target).encode("utf-8") + b"\x00")
    return digest.hexdigest()[:24]


def fitted_member(
    recipe: Recipe, data: Data, params: Mapping[str, Any], seed: int, say: Callable[[str], None] | None = None
) -> tuple[Any, dict[str, np.ndarray], bool]:
    """`recipe` fitted on `data.train` with `params` and `seed`, its validation and test scores,
    and whether it came from the cache (`data.cache / "members"`), where a fit is kept for next time."""
    values = recipe.resolve(params)
    folder = (
        data.cache / "members" / f"{recipe.name}-{_member_key(recipe.name, values, seed, data)}" if data.cache else None
    )
    if folder is not None and (folder / "done").exists():
        scores = {s: np.load(folder / f"scores-{s}.npy", allow_pickle=False) for s in _SCORES}
        return recipe.load(folder), scores, True
    started = time.perf_counter()
    model = recipe.fit(data, values, seed)
    fit_seconds = time.perf_counter() - started
    scores = {s: _predict(recipe, model, data, s) for s in _SCORES}
    if folder is not None:
        temporary = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        recipe.save(model, temporary)
        for split, values_ in scores.items():
            np.save(temporary / f"scores-{split}.npy", values_, allow_pickle=False)
        (temporary / "done").write_text(json.dumps({"recipe": recipe.name, "fit_seconds": round(fit_seconds, 2)}))
        shutil.rmtree(folder, ignore_errors=True)
        temporary.replace(folder)  # atomic: a parallel reader sees the whole fit or none
    if say:
        say(f"member {recipe.name} fitted in {fit_seconds:.1f} s")
    return model, scores, False


def _predict(recipe: Recipe, model: Any, data: Data, split: str) -> np.ndarray:
    part = getattr(data, split)
    if not len(part):
        return np.zeros((0, len(data.labels)), dtype=np.float32)
    cached = getattr(recipe, "predict_cached", None)
    if cached is not None:
        return np.asarray(cached(model, data, split), dtype=np.float32)
    return np.asarray(recipe.predict_batch(model, list(part.inputs)), dtype=np.float32)


def _mix(weights: Sequence[float], scores: Sequence[np.ndarray]) -> np.ndarray:
    """The weighted sum of the members' probabilities."""
    out = np.zeros(np.shape(scores[0]), dtype=np.float64)
    for weight, score in zip(weights, scores, strict=True):
        if weight:
            out += weight * np.asarray(score, dtype=np.float64)
    return out


def choose_weights(scores: Sequence[np.ndarray], truth: np.ndarray, step: float) -> tuple[float, ...]:
    """The grid point of the simplex (weights summing to 1, multiples of `step`) whose weighted mean
    of `scores` has the best accuracy against `truth`, ties broken by the mean log-likelihood."""
    units = round(1 / step)
    if units < 1 or abs(units * step - 1) > 1e-9:
        raise RecipeError(f"ensemble step {step!r} must divide 1 into whole parts (0.1, 0.05, 0.2); give one of those.")
    best: tuple[float, float, tuple[float, ...]] | None = None
    rows = np.arange(len(truth))
    for split in itertools.product(range(units + 1), repeat=len(scores) - 1):
        rest = units - sum(split)
        if rest < 0:
            continue
        weights = tuple(u / units for u in (*split, rest))
        mixed = _mix(weights, scores)
        accuracy = float((mixed.argmax(axis=1) == truth).mean())
        likelihood = float(np.log(np.clip(mixed[rows, truth], 1e-12, None)).mean())
        if best is None or (accuracy, likelihood) > best[:2]:
            best = (accuracy, likelihood, weights)
    assert best is not None
    return best[2]


class Ensemble(Recipe):
    name = "ensemble"
    kinds = ("text-classification", "tabular-classification")
    summary = "the weighted mean of other recipes' probabilities, the weights chosen on the validation split"
    params = (
        Param("members", "minilm-finetune,minilm-lr,char-svm", "the recipes averaged, comma-separated"),
        Param(
            "member_params",
            "minilm-finetune.epochs=4,minilm-finetune.max_length=32",
            "members' parameters, `recipe.name=value` comma-separated",
        ),
        Param("step", 0.05, "the grid step of the weights (they sum to 1)"),
        Param("refit", "minilm-lr,char-svm", "members fitted again on train and valid once the weights are chosen"),
    )

    def __init__(self, progress: Callable[[str], None] | None = None, project: Path | None = None) -> None:
        # A member's fit can take an hour (the fine-tuned MiniLM): its progress goes to stderr by default.
        self.progress = progress or (lambda line: print(f"ensemble: {line}", file=sys.stderr, flush=True))
        self.project = project
        self._shared = 0

    def _recipes(self, params: Mapping[str, Any]) -> list[tuple[str, Recipe, dict[str, Any]]]:
        names = [n.strip() for n in str(params["members"]).split(",") if n.strip()]
        if len(names) < 2 or len(set(names)) != len(names) or self.name in names:
            raise RecipeError(
                f"ensemble members {params['members']!r}: name two or more different recipes other than 'ensemble', "
                "comma-separated (for example members=minilm-lr,char-svm)."
            )
        given: dict[str, dict[str, str]] = {n: {} for n in names}
        for item in (i.strip() for i in str(params["member_params"]).split(",") if i.strip()):
            key, equals, value = item.partition("=")
            member, dot, param = key.strip().partition(".")
            if equals and dot and member not in given and member in catalog(self.project):
                continue  # parameters of a recipe that is not a member this time
            if not equals or not dot or member not in given:
                raise RecipeError(
                    f"ensemble member_params item {item!r}: write `recipe.param=value` with a recipe among "
                    f"the members ({', '.join(names)})."
                )
            given[member][param] = value.strip()
        out = []
        for name in names:
            recipe = get(name, self.project)
            if hasattr(recipe, "progress"):
                recipe.progress = self.progress
            out.append((name, recipe, recipe.resolve(given[name])))
        return out

    def prepare(self, data: Data) -> None:
        for name in [n.strip() for n in str(self.resolve()["members"]).split(",") if n.strip()]:
            get(name, self.project).prepare(data)

    def fit(self, data: Data, params: Mapping[str, Any], seed: int) -> _Model:
        if not len(data.valid):
            raise RecipeError(
                "the ensemble chooses its weights on the validation split, and this task has none; add one."
            )
        say = self.progress
        recipes = self._recipes(params)
        index = {label: i for i, label in enumerate(data.labels)}
        truth = np.array([index.get(str(y), -1) for y in data.valid.targets])
        members = []
        for name, recipe, values in recipes:
            model, scores, cached = fitted_member(recipe, data, values, seed, say)
            say(
                f"member {name}: valid accuracy {float((scores['valid'].argmax(axis=1) == truth).mean()):.4f}"
                + (" (cached fit)" if cached else "")
            )
            members.append(_Member(name, recipe, model, 0.0, scores))
        weights = choose_weights([m.scores["valid"] for m in members], truth, float(params["step"]))
        say("ensemble weights " + ", ".join(f"{m.name} {w:.2f}" for m, w in zip(members, weights, strict=True)))
        refit = {n.strip() for n in str(params["refit"]).split(",") if n.strip()}
        both = Data(
            data.kind,
            Split([*data.train.inputs, *data.valid.inputs], [*data.train.targets, *data.valid.targets]),
            Split([], []),
            Split([], []),
            version=data.version,
            labels=data.labels,
        )
        kept = []
        for member, weight, (_, recipe, values) in zip(members, weights, recipes, strict=True):
            if not weight:
                continue  # a member with no weight is left out of the saved model
            member.weight = weight
            if member.name in refit:
                member.model = recipe.fit(both, values, seed)
                member.scores = {"test": _predict(recipe, member.model, data, "test")}
            kept.append(member)
        self._shared = max((m.recipe.shared_bytes() for m in kept), default=0)
        return _Model(kept, {s: data.fingerprint(s) for s in _SCORES})

    def predict_cached(self, model: _Model, data: Data, split: str) -> np.ndarray:
        """The members' kept scores of the task's splits, when they are this data's (no re-encoding)."""
        if model.fingerprints.get(split) == data.fingerprint(split) and all(split in m.scores for m in model.members):
            return _mix([m.weight for m in model.members], [m.scores[split] for m in model.members])
        return _mix(
            [m.weight for m in model.members], [_predict(m.recipe, m.model, data, split) for m in model.members]
        )

    def predict_batch(self, model: _Model, inputs: Sequence[Any]) -> np.ndarray:
        scores = [np.asarray(m.recipe.predict_batch(m.model, inputs)) for m in model.members]
        return _mix([m.weight for m in model.members], scores)

    def shared_bytes(self) -> int:
        return self._shared  # the encoder the MiniLM members share is installed once

    def save(self, model: _Model, folder: Path) -> None:
        listed = []
        for i, member in enumerate(model.members):
            sub = folder / f"member-{i}-{member.name}"
            sub.mkdir(parents=True, exist_ok=True)
            member.recipe.save(member.model, sub)
            listed.append({"recipe": member.name, "weight": member.weight, "folder": sub.name})
        (folder / _MEMBERS_FILE).write_text(json.dumps({"members": listed}, indent=1), encoding="utf-8")

    def load(self, folder: Path) -> _Model:
        listed = json.loads((folder / _MEMBERS_FILE).read_text(encoding="utf-8"))["members"]
        members = []
        for item in listed:
            recipe = get(item["recipe"], self.project)
            members.append(
                _Member(item["recipe"], recipe, recipe.load(folder / item["folder"]), float(item["weight"]), {})
            )
        return _Model(members, {})
