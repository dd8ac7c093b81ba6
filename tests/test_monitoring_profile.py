"""The banking77 example's drift profile: written by train.py, loaded, and read against real and foreign text."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from shipway.monitoring.drift.comparison import compare
from shipway.monitoring.drift.profile import Profile
from shipway.monitoring.drift.window import Window

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "banking77"


def import_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"drift_banking77_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("banking77-drift")
    import_example("data").build_dataset(EXAMPLE / "data", root / "dataset")
    train = import_example("train")
    manifest = train.train(root / "dataset", root / "artifacts")
    with (root / "dataset" / "test.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # The test file is sorted by intent: a random draw is what live traffic looks like.
    chosen = np.random.default_rng(0).choice(len(rows), size=1_000, replace=False)
    texts = [rows[i]["text"] for i in sorted(chosen)]
    return {"root": root, "manifest": manifest, "texts": texts, "profile": Profile.load(root / "artifacts")}


def test_train_writes_a_profile_beside_the_model(trained: dict[str, Any]) -> None:
    profile: Profile = trained["profile"]
    assert (trained["root"] / "artifacts" / "profile.json").is_file()
    assert profile.meta["version"] == trained["manifest"]["version"]
    kinds = {f.name: f.kind for f in profile.features}
    assert kinds == {"text": "text", "output.intent": "categorical", "output.probability": "numeric"}
    assert profile.n_rows == trained["manifest"]["rows"]["train"]
    assert profile.n_output_rows == trained["manifest"]["rows"]["valid"]
    intents = profile.feature("output.intent").categories
    assert intents is not None and set(intents) <= set(trained["manifest"]["labels"])
    text = profile.feature("text").text
    assert text is not None and 0 < text.oov_expected < 0.05 and len(text.sample) == 1_000


def test_real_banking77_texts_show_no_text_drift(trained: dict[str, Any]) -> None:
    report = compare(trained["profile"], {"text": trained["texts"]}, embed="hashing")
    verdicts = {r.method: r.drifted for r in report.results if r.feature == "text"}
    assert verdicts == {"text_length": False, "oov_rate": False, "domain_classifier": False}
    auc = report.result("text", "domain_classifier")
    assert auc.value is not None and auc.value < 0.6 and auc.n_reference == auc.n_current == 1_000


@pytest.mark.parametrize("foreign", ["reversed words", "another language"])
def test_foreign_text_drifts(trained: dict[str, Any], foreign: str) -> None:
    if foreign == "reversed words":
        texts = [" ".join(t.split()[::-1]) for t in trained["texts"]]
    else:
        # German renderings of common BANKING77 requests, numbered so that no two are equal.
        german = [
            "Meine Karte ist noch nicht angekommen, wann wird sie geliefert",
            "Ich habe meine Karte verloren und brauche eine neue",
            "Warum wurde meine Überweisung noch nicht ausgeführt",
            "Wie kann ich Geld auf mein Konto einzahlen",
            "Der Geldautomat hat meine Karte einbehalten",
        ]
        texts = [f"{german[i % len(german)]} (Anfrage {i})" for i in range(300)]
    report = compare(trained["profile"], Window.from_columns({"text": texts}), embed="hashing")
    assert report.result("text", "domain_classifier").drifted
    if foreign == "another language":
        assert report.result("text", "oov_rate").drifted
    else:  # the same words in another order: only the classifier can see it
        assert not report.result("text", "oov_rate").drifted
