"""The banking77 example: dataset build, training, and the service module it ships."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "banking77"


def import_example(name: str) -> ModuleType:
    """Import examples/banking77/<name>.py by path; examples/ is not a package."""
    spec = importlib.util.spec_from_file_location(f"example_banking77_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


data = import_example("data")
train = import_example("train")
service = import_example("service")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One dataset build and one trained model, shared by the module's tests."""
    root = tmp_path_factory.mktemp("banking77")
    dataset_manifest = data.build_dataset(EXAMPLE / "data", root / "dataset")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        model_manifest = train.train(root / "dataset", root / "artifacts")
    return {
        "root": root,
        "dataset": dataset_manifest,
        "manifest": model_manifest,
        "printed": printed.getvalue(),
        "model": service.load(root / "artifacts"),
    }


@pytest.fixture(scope="module")
def test_texts(built: dict[str, Any]) -> list[str]:
    with (built["root"] / "dataset" / "test.csv").open(newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def test_training_says_what_it_is_doing_before_the_long_step(built: dict[str, Any]) -> None:
    lines = built["printed"].splitlines()
    assert lines[0].startswith("fitting TF-IDF and logistic regression on ") and "77 intents" in lines[0]
    assert lines[1].startswith("fitted in ") and "scoring" in lines[1]
    assert lines[2] == "writing the model, the drift reference and the manifest"


def test_dataset_manifest(built: dict[str, Any]) -> None:
    manifest = built["dataset"]
    assert len(manifest["version"]) == 16
    assert manifest["dropped"]["train"]["duplicate"] > 0
    rows = manifest["rows"]
    assert set(rows) == {"train", "valid", "test"}
    assert all(sum(manifest["labels"][split].values()) == rows[split] for split in rows)
    # Stratified: every one of the 77 intents is in every split.
    assert all(len(manifest["labels"][split]) == 77 for split in rows)
    on_disk = json.loads((built["root"] / "dataset" / "manifest.json").read_text())
    assert on_disk == manifest


def test_dataset_version_is_stable_across_builds(built: dict[str, Any], tmp_path: Path) -> None:
    again = data.build_dataset(EXAMPLE / "data", tmp_path / "dataset")
    assert again["version"] == built["dataset"]["version"]
    for name in ("train.csv", "valid.csv", "test.csv"):
        assert (tmp_path / "dataset" / name).read_bytes() == (built["root"] / "dataset" / name).read_bytes()


def test_dataset_version_changes_with_the_data(built: dict[str, Any], tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE / "data", src)
    with (src / "train.csv").open("a", encoding="utf-8") as f:
        f.write("A message nobody has sent before,card_arrival\n")
    assert data.build_dataset(src, tmp_path / "dataset")["version"] != built["dataset"]["version"]


def test_unknown_label_is_rejected_with_its_name_and_line(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE / "data" / "categories.json", tmp_path)
    (tmp_path / "train.csv").write_text(
        'text,category\nwhere is my card?,card_arrival\n"a text\nover two lines",card_arrival\n'
        "can I pay with bitcoin?,crypto_payments\n",
        encoding="utf-8",
    )
    shutil.copy(EXAMPLE / "data" / "test.csv", tmp_path)
    with pytest.raises(data.DatasetError, match=r"train\.csv line 5: unknown label 'crypto_payments'"):
        data.build_dataset(tmp_path, tmp_path / "out")


def test_model_manifest(built: dict[str, Any]) -> None:
    manifest = built["manifest"]
    assert manifest["version"].startswith("banking77-tfidf-lr-")
    assert manifest["dataset_version"] == built["dataset"]["version"]
    assert len(manifest["run_id"]) == 32
    for key in ("trained_at", "labels", "params", "libraries"):
        assert manifest[key]
    assert len(manifest["labels"]) == 77
    assert {"scikit-learn", "numpy", "python"} <= set(manifest["libraries"])
    on_disk = json.loads((built["root"] / "artifacts" / "manifest.json").read_text())
    assert on_disk == manifest


def test_accuracy(built: dict[str, Any]) -> None:
    metrics = built["manifest"]["metrics"]
    assert metrics["test_accuracy"] >= 0.87
    assert metrics["valid_accuracy"] >= 0.87


def test_predict_and_predict_batch_agree(built: dict[str, Any], test_texts: list[str]) -> None:
    messages = [service.Message(text=text) for text in test_texts[::15]]
    assert len(messages) >= 200
    batch = service.predict_batch(built["model"], messages)
    single = [service.predict(built["model"], message) for message in messages]
    assert [r.model_dump() for r in batch] == [r.model_dump() for r in single]


def test_alternatives_are_the_three_runners_up(built: dict[str, Any], test_texts: list[str]) -> None:
    labels = set(built["manifest"]["labels"])
    results = service.predict_batch(built["model"], [service.Message(text=t) for t in test_texts[:300]])
    for result in results:
        # The outputs were built without validation, so validating them here checks their shape.
        service.Intent.model_validate(result.model_dump())
        names = [alt.intent for alt in result.alternatives]
        probabilities = [result.probability] + [alt.probability for alt in result.alternatives]
        assert len(names) == 3 and len(set(names)) == 3
        assert result.intent not in names
        assert {result.intent, *names} <= labels
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-9


def test_batch_scoring_over_columns_answers_what_serving_answers(
    built: dict[str, Any], test_texts: list[str], tmp_path: Path
) -> None:
    """`shipway score` takes the example's predict_columns; every row it writes equals the answer
    and decision of `Pipeline.run` on that row alone (predict_batch's, through the rules)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shipway.project import load_pipeline
    from shipway.scoring import score
    from tests.scoring.test_scoring_columns import same, scored, served

    project = tmp_path / "banking77"
    project.mkdir()
    for name in ("service.py", "shipway.toml", "rules.yaml"):
        shutil.copy(EXAMPLE / name, project / name)
    shutil.copytree(built["root"] / "artifacts", project / "artifacts")
    texts = [*test_texts[::5], "   ", "x" * 2001, "  lost   my card  ", "y" * 300]
    pipeline = load_pipeline(project)
    parsed = pipeline.parse_many([{"text": t} for t in texts[:50]])
    assert pipeline.run_columns(parsed).answers is not None  # the column path ran
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    summary = score(project, tmp_path / "in.parquet", tmp_path / "out.parquet", batch_size=256)
    assert summary.errors == 2
    same(scored(tmp_path / "out.parquet"), served(project, [{"text": t} for t in texts]))


def test_predict_batch_of_nothing(built: dict[str, Any]) -> None:
    assert service.predict_batch(built["model"], []) == []


def test_example_input_is_predicted(built: dict[str, Any]) -> None:
    assert service.predict(built["model"], service.example).intent == "card_arrival"


def test_normalise_collapses_whitespace() -> None:
    message = service.normalise(service.Message(text="  I am\tstill\n\nwaiting   on my card? "))
    assert message.text == "I am still waiting on my card?"
    tidy = service.Message(text="already tidy")
    assert service.normalise(tidy) is tidy
    assert service.before == [service.normalise, service.truncate]


def test_whitespace_only_message_is_rejected() -> None:
    with pytest.raises(ValueError):
        service.Message(text=" \n\t ")


def test_config_is_valid_and_names_the_rules() -> None:
    from shipway.core.settings import load_settings

    settings = load_settings(EXAMPLE)  # every key known, every value of the right type
    assert settings["name"] == "banking77"
    assert settings["rules.file"] == "rules.yaml"
    assert (EXAMPLE / settings["rules.file"]).is_file()
