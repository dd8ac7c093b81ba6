"""Recipes: fit, save, load through the manifest, predict; declared parameters; a project's own recipe."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import shipway.recipes as recipes
from shipway.errors import ArtifactError, RecipeError
from shipway.recipes import Data, Split

# XGBoost (with NVIDIA's NCCL, over 250 MB) is not in the dev extra: its recipe is tested where it
# is installed (`pip install 'shipway[xgboost]'`). LightGBM is small and is in dev.
XGBOOST = pytest.param(
    "xgboost",
    marks=pytest.mark.skipif(importlib.util.find_spec("xgboost") is None, reason="needs shipway[xgboost]"),
)

TEXTS = ["my card has not arrived", "where is my card", "card delivery late", "i want a refund", "refund my money"]
LABELS = ["card", "card", "card", "refund", "refund"]


def text_data() -> Data:
    split = Split(TEXTS, LABELS)
    return Data("text-classification", split, split, split, version="v1")


def tabular_data(kind: str) -> Data:
    rng = np.random.default_rng(0)
    rows = [{"x": float(v), "colour": c} for v, c in zip(rng.normal(size=300), ["red", "blue"] * 150, strict=True)]
    if kind == "tabular-classification":
        targets: list = ["high" if r["x"] > 0 else "low" for r in rows]
    else:
        targets = [2.0 * r["x"] + (r["colour"] == "red") for r in rows]
    return Data(
        kind, Split(rows[:200], targets[:200]), Split(rows[200:250], targets[200:250]), Split(rows[250:], targets[250:])
    )


@pytest.mark.parametrize("name", ["tfidf-lr", "char-svm"])
def test_a_text_recipe_saves_a_folder_any_service_loads_with_the_same_answers(name: str, tmp_path: Path) -> None:
    recipe = recipes.get(name)
    data = text_data()
    manifest = recipes.train(recipe, data, tmp_path, {"C": 5} if name == "tfidf-lr" else {"folds": 2}, seed=3)
    assert manifest["recipe"]["name"] == name and manifest["seed"] == 3
    assert manifest["version"] == f"{name}-{recipes.artifacts_digest(tmp_path)[:12]}"
    assert set(manifest["metrics"]) == {"valid_accuracy", "test_accuracy"}
    assert manifest["labels"] == ["card", "refund"] and manifest["model_bytes"] > 0
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.joblib"))
    predictor = recipes.load(tmp_path)
    assert predictor.predict_proba(["my card"]).shape == (1, 2)
    assert list(predictor.predict(["refund please", "card arrived"])) == ["refund", "card"]


@pytest.mark.parametrize("name", ["tabular-lr", "random-forest", "hist-gbm", "lightgbm", XGBOOST])
def test_tabular_classifiers_round_trip_through_their_saved_files(name: str, tmp_path: Path) -> None:
    data = tabular_data("tabular-classification")
    recipe = recipes.get(name)
    manifest = recipes.train(recipe, data, tmp_path, seed=0)
    assert manifest["metrics"]["test_accuracy"] >= 0.7
    loaded = recipes.load(tmp_path)
    fitted = recipe.fit(data, recipe.resolve(), 0)
    inputs = list(data.test.inputs)
    assert np.allclose(loaded.predict_proba(inputs), recipe.predict_batch(fitted, inputs), atol=1e-6)


@pytest.mark.parametrize("name", ["random-forest", "hist-gbm", "lightgbm", XGBOOST])
def test_tabular_regressors_score_r2(name: str, tmp_path: Path) -> None:
    manifest = recipes.train(recipes.get(name), tabular_data("tabular-regression"), tmp_path, seed=0)
    assert manifest["metric"] == "r2" and manifest["metrics"]["test_r2"] > 0.5
    predictor = recipes.load(tmp_path)
    assert predictor.predict([{"x": 0.0, "colour": "red"}]).shape == (1,)
    with pytest.raises(RecipeError, match="not a classifier"):
        predictor.predict_proba([{"x": 0.0, "colour": "red"}])


def test_an_unknown_recipe_or_parameter_or_kind_is_refused_with_what_exists() -> None:
    with pytest.raises(RecipeError, match=r"no recipe 'bert' built in.*tfidf-lr.*recipes/ folder"):
        recipes.get("bert")
    with pytest.raises(
        RecipeError, match=r"recipe 'tfidf-lr' has no parameter 'alpha' \(given alpha=1\).*ngram_max, C"
    ):
        recipes.get("tfidf-lr").resolve({"alpha": 1})
    with pytest.raises(RecipeError, match=r"parameter 'C' takes a float \(default 20.0\), not 'high'"):
        recipes.get("tfidf-lr").resolve({"C": "high"})
    assert recipes.get("tfidf-lr").resolve({"C": "5", "ngram_max": "3"})["C"] == 5.0
    with pytest.raises(RecipeError, match="fits tabular-classification, not the task's kind 'text-classification'"):
        recipes.train(recipes.get("tabular-lr"), text_data(), Path("unused"))
    with pytest.raises(RecipeError, match="task kind 'images' is not one of"):
        Data("images", Split([], []), Split([], []), Split([], []))


def test_a_folder_whose_manifest_names_no_recipe_or_is_altered_is_refused(tmp_path: Path) -> None:
    recipes.train(recipes.get("tfidf-lr"), text_data(), tmp_path)
    (tmp_path / "model.skops").write_bytes(b"changed")
    with pytest.raises(ArtifactError, match=r"model\.skops"):
        recipes.load(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.bin").write_bytes(b"x")
    from shipway import write_manifest

    write_manifest(other, {"version": "v"})
    with pytest.raises(RecipeError, match="names no recipe"):
        recipes.load(other)
    with pytest.raises(ArtifactError, match="no model in"):
        recipes.load(tmp_path / "missing")


OWN_RECIPE = """
import json
from collections import Counter

import numpy as np

from shipway.recipes import Param, Recipe


class Majority(Recipe):
    name = "majority"
    kinds = ("text-classification",)
    summary = "always the most frequent label"
    params = (Param("smoothing", 0.0, "added to every count"),)

    def fit(self, data, params, seed):
        counts = Counter(str(y) for y in data.train.targets)
        return [counts.get(label, 0) + params["smoothing"] for label in data.labels]

    def save(self, model, folder):
        (folder / "counts.json").write_text(json.dumps(model))

    def load(self, folder):
        return json.loads((folder / "counts.json").read_text())

    def predict_batch(self, model, inputs):
        row = np.asarray(model, dtype=float) / sum(model)
        return np.tile(row, (len(inputs), 1))
"""


def test_a_project_adds_its_own_recipe_in_one_file(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "majority.py").write_text(OWN_RECIPE)
    assert "majority" in recipes.catalog(tmp_path)
    folder = tmp_path / "artifacts"
    manifest = recipes.train(recipes.get("majority", tmp_path), text_data(), folder)
    assert manifest["metrics"]["test_accuracy"] == 0.6
    assert json.loads((folder / "manifest.json").read_text())["recipe"]["name"] == "majority"
    assert list(recipes.load(folder, project=tmp_path).predict(["anything"])) == ["card"]
    (tmp_path / "recipes" / "shadow.py").write_text(OWN_RECIPE.replace('"majority"', '"tfidf-lr"'))
    with pytest.raises(RecipeError, match="recipe name 'tfidf-lr' is a built-in recipe's; rename it"):
        recipes.catalog(tmp_path)


def ranking_data() -> Data:
    """Queries and the help article that answers each: the banking77-like rows of recipe_projects."""
    import random

    from recipe_projects import _texts

    rows = _texts(random.Random(11), 120)
    queries, articles = [q for q, _ in rows], [f"article-{a}" for _, a in rows]
    return Data(
        "ranking",
        Split(queries[:80], articles[:80]),
        Split(queries[80:100], articles[80:100]),
        Split(queries[100:], articles[100:]),
        version="r1",
    )


@pytest.mark.parametrize("name", ["tfidf-centroid", "tfidf-lr"])
def test_ranking_recipes_score_ndcg_mrr_and_hit_rate_as_scikit_learn_does(name: str, tmp_path: Path) -> None:
    from sklearn.metrics import ndcg_score

    data = ranking_data()
    manifest = recipes.train(recipes.get(name), data, tmp_path, seed=0)
    assert manifest["kind"] == "ranking" and manifest["metric"] == "ndcg"
    assert manifest["labels"] == ["article-card", "article-pin", "article-refund"]
    assert set(manifest["metrics"]) == {f"{s}_{m}" for s in ("valid", "test") for m in ("ndcg", "mrr", "hit_rate")}
    predictor = recipes.load(tmp_path)
    scores = predictor.predict_proba(list(data.valid.inputs))
    truth = np.array([[float(item == t) for item in manifest["labels"]] for t in data.valid.targets])
    assert manifest["metrics"]["valid_ndcg"] == pytest.approx(ndcg_score(truth, scores, k=10), abs=1e-4)
    ranks = (scores >= scores[truth == 1][:, None]).sum(axis=1)
    assert manifest["metrics"]["valid_mrr"] == pytest.approx(float(np.mean(1 / ranks)), abs=1e-4)
    # rank(): the k best items, best first, with their scores.
    [best] = predictor.rank(["my card has not arrived in the post"], k=2)
    assert [item for item, _ in best] == ["article-card", *[i for i, _ in best[1:]]] and len(best) == 2
    assert best[0][1] >= best[1][1]


def test_a_ranking_counts_an_unknown_target_as_not_found() -> None:
    from shipway.recipes._fit import ranking_scores

    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    found = ranking_scores(("a", "b"), scores, ["a", "a", "zzz"])
    assert found["hit_rate"] == pytest.approx(2 / 3)  # zzz is no item
    assert found["mrr"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert found["ndcg"] == pytest.approx((1 + 1 / np.log2(3)) / 3)
