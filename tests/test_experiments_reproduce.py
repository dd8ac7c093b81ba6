"""Datasets, tracked training and reproduction on a real git repository holding a small project:
TF-IDF and logistic regression on a few hundred BANKING77 rows, so that each run takes seconds."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from shipway.cli.main import main as cli
from shipway.store import open_store

BANKING77 = Path(__file__).resolve().parent.parent / "examples" / "banking77" / "data" / "train.csv"
LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed")

DATA_PY = """
import csv, random
from pathlib import Path

rows = list(csv.DictReader(open("raw.csv", encoding="utf-8")))
random.Random(7).shuffle(rows)
out = Path("build/dataset")
out.mkdir(parents=True, exist_ok=True)
for name, part in (("train", rows[:200]), ("valid", rows[200:250]), ("test", rows[250:])):
    with open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["text", "category"], lineterminator="\\n")
        writer.writeheader()
        writer.writerows(part)
print("wrote", len(rows), "rows")
"""

TRAIN_PY = """
import csv, json
from pathlib import Path

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import shipway

def split(folder, name):
    rows = list(csv.DictReader(open(folder / f"{name}.csv", encoding="utf-8")))
    return [r["text"] for r in rows], [r["category"] for r in rows]

with shipway.run(name="tiny") as run:
    config = run.configure({"C": 10.0})
    seed = run.seed(0)
    folder = run.dataset_dir or Path("build/dataset")
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(C=config["C"], random_state=seed))
    model.fit(*split(folder, "train"))
    run.log_metric("valid_accuracy", model.score(*split(folder, "valid")))
    run.log_metric("test_accuracy", model.score(*split(folder, "test")))
    artifacts = run.artifacts_dir or Path("artifacts")
    artifacts.mkdir(exist_ok=True)
    joblib.dump(model, artifacts / "model.joblib")
    shipway.write_manifest(artifacts, {"version": "tiny-1"})
"""

SERVICE_PY = """
from pathlib import Path

import joblib
from pydantic import BaseModel


class Message(BaseModel):
    text: str


class Intent(BaseModel):
    intent: str


def load(artifacts: Path):
    return joblib.load(Path(artifacts) / "model.joblib")


def predict_batch(model, messages: list[Message]) -> list[Intent]:
    return [Intent(intent=label) for label in model.predict([m.text for m in messages])]
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def shipway(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--target", str(root)])


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("repo")
    with BANKING77.open(encoding="utf-8") as fh:
        everything = list(csv.DictReader(fh))
    rows = [r for label in LABELS for r in [x for x in everything if x["category"] == label][:75]]
    with (root / "raw.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["text", "category"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (root / "data.py").write_text(DATA_PY)
    (root / "train.py").write_text(TRAIN_PY)
    (root / "service.py").write_text(SERVICE_PY)
    (root / "shipway.toml").write_text(
        'name = "tiny"\n\n[data]\ntarget = "category"\n\n[batching]\nmax_batch_size = 16\n'
    )
    (root / ".gitignore").write_text("build/\nartifacts/\n.shipway/\n__pycache__/\n")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "tiny project")
    yield root


@pytest.fixture(scope="module")
def first_run(project: Path) -> dict[str, Any]:
    built = json_of(shipway(project, "data", "build", "--json"))
    assert built["rows"] == {"train": 200, "valid": 50, "test": 50}
    assert built["schema"] == {"text": "str"} and built["target"] == "category"
    assert set(built["labels"]["train"]) == set(LABELS)
    run = json_of(shipway(project, "train", "--json"))
    return {"dataset": built, "run": run}


def test_a_run_records_code_data_environment_metrics_and_the_model(project: Path, first_run: dict[str, Any]) -> None:
    run = first_run["run"]
    assert run["status"] == "finished" and run["error"] is None
    assert run["code"]["commit"] == git(project, "rev-parse", "HEAD").strip()
    assert run["dirty"] is False and run["code"]["diff"] == ""
    assert run["dataset_version"] == first_run["dataset"]["version"]
    assert run["seeds"] == {"PYTHONHASHSEED": 0, "seed": 0} and run["params"] == {"C": 10.0}
    assert {
        "valid_accuracy",
        "test_accuracy",
        "model_size_bytes",
        "latency_ms_p50",
        "latency_ms_batched_per_item",
    } <= set(run["metrics"])
    assert {"artifacts/model.joblib", "artifacts/manifest.json", "log.txt"} <= set(run["artifacts"])
    assert run["environment"]["packages"]["scikit-learn"]
    # The manifest the service logs with names this run and its data.
    manifest = json.loads((project / "artifacts" / "manifest.json").read_text())
    assert manifest["run_id"] == run["id"] and manifest["dataset_version"] == run["dataset_version"]
    assert run["model_version"] == "tiny-1"
    listed = json_of(shipway(project, "runs", "list", "--json"))
    assert [r["id"] for r in listed] == [run["id"]]


def test_reproduce_reports_identical_metrics(project: Path, first_run: dict[str, Any]) -> None:
    result = shipway(project, "reproduce", first_run["run"]["id"][:10], "--json")
    report = json_of(result)
    assert report["matches"] is True, report
    assert report["metrics"]["valid_accuracy"]["original"] == report["metrics"]["valid_accuracy"]["reproduced"]
    assert report["metrics"]["latency_ms_p50"]["compared"] is False
    assert report["differences"] == [] and report["notes"] == []
    with open_store("sqlite:///.shipway/shipway.db", project) as store:
        assert store.get_run(report["run"]).parent == first_run["run"]["id"]
    assert "shipway-reproduce" not in git(project, "worktree", "list")


def test_a_try_run_is_reproduced_by_fitting_its_recipe_again(project: Path, first_run: dict[str, Any]) -> None:
    tried = shipway(project, "try", "tfidf-lr", "--set", "tfidf-lr.C=3", "--seeds", "2")
    assert tried.exit_code == 0, tried.output
    with open_store("sqlite:///.shipway/shipway.db", project) as store:
        run = next(r for r in store.list_runs() if r.recipe == "tfidf-lr" and r.seeds.get("seed") == 1)
    report = json_of(shipway(project, "reproduce", run.id, "--json"))
    assert report["matches"] is True, report
    assert report["metrics"]["valid_accuracy"]["compared"] is True
    assert report["metrics"]["test_accuracy"]["original"] == report["metrics"]["test_accuracy"]["reproduced"]
    with open_store("sqlite:///.shipway/shipway.db", project) as store:
        again = store.get_run(report["run"])
    assert again.parent == run.id and again.recipe == "tfidf-lr"
    assert again.seeds == {"seed": 1} and again.params["C"] == 3.0


def test_uncommitted_changes_are_recorded_applied_and_compared(project: Path, first_run: dict[str, Any]) -> None:
    train_py = project / "train.py"
    train_py.write_text(TRAIN_PY.replace('{"C": 10.0}', '{"C": 0.5}'))
    (project / "notes.txt").write_text("an untracked file\n")
    try:
        dirty = json_of(shipway(project, "train", "--json"))
        assert dirty["dirty"] is True and '"C": 0.5' in dirty["code"]["diff"]
        assert list(dirty["code"]["untracked"]) == ["notes.txt"]
        compared = json_of(shipway(project, "runs", "compare", first_run["run"]["id"], dirty["id"], "--json"))
        assert compared["params"] == {"C": [10.0, 0.5]}
        assert '"C": 0.5' in compared["code"]["uncommitted_diff"]
        (project / "notes.txt").write_text("changed since\n")
        report = json_of(shipway(project, "reproduce", dirty["id"], "--json"))
    finally:
        git(project, "checkout", "train.py")
        (project / "notes.txt").unlink()
    # The recorded diff is applied: the reproduction learns with C=0.5 and gets the same metrics.
    assert report["matches"] is True, report
    assert any("untracked file notes.txt changed since the run" in n for n in report["notes"])
    assert any("untracked file notes.txt" in d for d in report["differences"])


def test_another_dataset_version_is_refused_naming_both(project: Path, first_run: dict[str, Any]) -> None:
    wanted = first_run["dataset"]["version"]
    objects = project / ".shipway" / "objects"
    saved = project / "objects-saved"
    shutil.move(objects, saved)
    split = project / "build" / "dataset" / "test.csv"
    original = split.read_bytes()
    split.write_bytes(original + b"one more row,card_arrival\n")
    try:
        result = shipway(project, "reproduce", first_run["run"]["id"])
    finally:
        split.write_bytes(original)
        shutil.rmtree(objects, ignore_errors=True)
        shutil.move(saved, objects)
    assert result.exit_code == 1
    assert f"learnt from dataset version {wanted}, but" in result.output
    assert "holds version" in result.output and "shipway data build" in result.output


def test_data_diff_counts_added_removed_and_relabelled_rows(project: Path, first_run: dict[str, Any]) -> None:
    split = project / "build" / "dataset" / "valid.csv"
    original = split.read_text()
    lines = original.splitlines(keepends=True)
    text, label = lines[1].rstrip("\n").rsplit(",", 1)
    changed = [
        lines[0],
        f"{text},{'card_arrival' if label != 'card_arrival' else 'exchange_rate'}\n",
        *lines[3:],
        "a new row,top_up_failed\n",
    ]
    split.write_text("".join(changed))
    try:
        (project / "data.py").rename(project / "data.py.off")
        (project / "data.py").write_text("print('keeping the folder as it is')\n")
        second = json_of(shipway(project, "data", "build", "--json"))
    finally:
        (project / "data.py.off").replace(project / "data.py")
        split.write_text(original)
    diff = json_of(shipway(project, "data", "diff", first_run["dataset"]["version"], second["version"], "--json"))
    assert diff["splits"]["valid"]["relabelled"] == 1
    assert diff["splits"]["valid"]["removed"] == 1 and diff["splits"]["valid"]["added"] == 1
    assert diff["splits"]["train"] == {"added": 0, "removed": 0, "relabelled": 0, "reordered": False, "examples": {}}
    assert diff["rows"] == {}
