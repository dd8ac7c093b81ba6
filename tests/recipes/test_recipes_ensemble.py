"""The ensemble recipe: weights chosen on validation, members kept in the cache, saved and loaded as one model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from recipe_projects import WORDS

import shipway.recipes as recipes
from shipway.errors import RecipeError
from shipway.recipes import Data, Split
from shipway.recipes.ensemble import Ensemble, choose_weights

MEMBERS = {"members": "tfidf-lr,tfidf-nb", "refit": "tfidf-nb", "step": 0.1}


def topics(cache: Path | None) -> Data:
    rng = random.Random(3)
    rows = []
    for i in range(150):
        topic = list(WORDS)[i % len(WORDS)]
        words = rng.sample(WORDS[topic], 2) + rng.sample(["my", "the", "please", "help", "card", "money"], 3)
        rows.append((" ".join(words), topic))
    split = [Split([t for t, _ in part], [y for _, y in part]) for part in (rows[:90], rows[90:120], rows[120:])]
    return Data("text-classification", *split, version="v1", cache=cache)


def test_the_weights_are_the_grid_point_with_the_best_validation_accuracy_then_likelihood() -> None:
    truth = np.array([0, 1, 0, 1])
    right = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
    wrong = right[:, ::-1]
    assert choose_weights([wrong, right], truth, 0.1) == (0.0, 1.0)
    # Both alone are right on half the rows; only their mean is right on all four.
    first = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    second = np.array([[0.45, 0.55], [0.1, 0.9], [0.6, 0.4], [0.1, 0.9]])
    weights = choose_weights([first, second], truth, 0.1)
    mixed = weights[0] * first + weights[1] * second
    assert (mixed.argmax(axis=1) == truth).all() and 0 < weights[0] < 1 and sum(weights) == pytest.approx(1)
    with pytest.raises(RecipeError, match="must divide 1"):
        choose_weights([first, second], truth, 0.3)


def test_an_ensemble_saves_its_members_and_loads_back_as_one_model_from_cached_members(tmp_path: Path) -> None:
    data = topics(tmp_path / "cache")
    said: list[str] = []
    recipe = Ensemble(progress=said.append)
    folder = tmp_path / "model"
    manifest = recipes.train(recipe, data, folder, MEMBERS, seed=0)
    assert manifest["recipe"]["name"] == "ensemble" and set(manifest["metrics"]) == {"valid_accuracy", "test_accuracy"}
    listed = json.loads((folder / "ensemble.json").read_text())["members"]
    assert sum(m["weight"] for m in listed) == pytest.approx(1)
    assert {m["recipe"] for m in listed} <= {"tfidf-lr", "tfidf-nb"}
    assert any(line.startswith("ensemble weights tfidf-lr") for line in said)
    cached = sorted(
        p.name.split("-")[0] + "-" + p.name.split("-")[1] for p in (tmp_path / "cache" / "members").iterdir()
    )
    assert cached == ["tfidf-lr", "tfidf-nb"]
    # The service's view: the folder loads through its manifest and answers as the weighted members do.
    predictor = recipes.load(folder)
    texts = list(data.test.inputs)
    expected = sum(
        m["weight"] * recipes.get(m["recipe"]).predict_batch(recipes.get(m["recipe"]).load(folder / m["folder"]), texts)
        for m in listed
    )
    assert np.allclose(predictor.predict_proba(texts), expected)
    assert manifest["metrics"]["test_accuracy"] == pytest.approx(
        float(np.mean(predictor.predict(texts) == np.array(data.test.targets))), abs=1e-4
    )

    # Fitted again on the same data: the members come from the cache, with the same weights.
    again: list[str] = []
    second = recipes.train(Ensemble(progress=again.append), data, tmp_path / "again", MEMBERS, seed=0)
    assert sum("(cached fit)" in line for line in again) == 2
    assert second["metrics"] == manifest["metrics"]
    # Other training labels are other data: nothing cached fits them.
    relabelled = Data(data.kind, Split(data.train.inputs, ["card"] * 45 + list(data.train.targets[45:])),
                      data.valid, data.test, version="v1", cache=data.cache)  # fmt: skip
    third: list[str] = []
    recipes.train(Ensemble(progress=third.append), relabelled, tmp_path / "third", MEMBERS, seed=0)
    assert not any("(cached fit)" in line for line in third)


def test_bad_members_and_a_task_without_validation_are_refused(tmp_path: Path) -> None:
    data = topics(None)
    for members in ("tfidf-lr", "tfidf-lr,tfidf-lr", "tfidf-lr,ensemble"):
        with pytest.raises(RecipeError, match="name two or more different recipes"):
            recipes.train(Ensemble(), data, tmp_path, {"members": members})
    with pytest.raises(RecipeError, match="no recipe 'bert'"):
        recipes.train(Ensemble(), data, tmp_path, {"members": "tfidf-lr,bert"})
    with pytest.raises(RecipeError, match=r"write `recipe\.param=value`"):
        recipes.train(Ensemble(), data, tmp_path, {"members": "tfidf-lr,tfidf-nb", "member_params": "tfidf-lr.C"})
    no_valid = Data(data.kind, data.train, Split([], []), data.test, version="v1")
    with pytest.raises(RecipeError, match="chooses its weights on the validation split"):
        recipes.train(Ensemble(), no_valid, tmp_path, MEMBERS)
