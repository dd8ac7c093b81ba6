"""`shipway inspect labels` from the command line: its output, its files, its errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("cleanlab")

import numpy as np
import pandas as pd
from click.testing import CliRunner, Result

from shipway.cli.main import main as cli

MODELS = '''
import numpy as np
from sklearn.linear_model import LogisticRegression


class Words:
    """predict_proba returns strings."""

    classes_ = None

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), "high", dtype=object)


class Scores(Words):
    """predict_proba returns scores that are not probabilities."""

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 3.0)


class NoProba:
    def fit(self, X, y):
        return self


def words():
    return Words()


def scores():
    return Scores()


def no_proba():
    return NoProba()


def logistic():
    return LogisticRegression(max_iter=500)


NOT_CALLABLE = 3
'''


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["inspect", "labels", *args])


def tabular(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, rows)
    kind = rng.choice(["a", "b"], rows)
    label = np.where(x < 5, "small", "large")
    flipped = rng.choice(rows, rows // 20, replace=False)
    label[flipped] = np.where(label[flipped] == "small", "large", "small")
    return pd.DataFrame({"x": x.round(3), "kind": kind, "label": label})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    tabular().to_csv(path, index=False)
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def test_prints_the_summary_and_the_tables(data: Path) -> None:
    result = run(str(data), "--top", "5")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "300 rows, 2 classes; label 'label', features ['x', 'kind']" in out
    assert "out-of-sample accuracy" in out and "likely label issues" in out
    for heading in ("Likely label issues:", "Worst slices:", "Classes, lowest recall first:"):
        assert heading in out
    issues = out[out.index("Likely label issues:") : out.index("Most frequent")]
    assert len([line for line in issues.splitlines() if "x=" in line]) == 5


def test_json_is_the_whole_report(data: Path) -> None:
    result = run(str(data), "--json", "--top", "3")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 300 and report["classes"] == 2 and report["label"] == "label"
    # Every issue is in the report, whatever --top; slices are cut to --top.
    assert report["issue_count"] == len(report["issues"]) > 3
    assert len(report["slices"]) <= 3
    frame = pd.read_csv(data)
    for issue in report["issues"]:
        assert frame.loc[issue["row"], "label"] == issue["given"]


@pytest.mark.parametrize("suffix", [".json", ".csv", ".html"])
def test_out_saves_the_report(data: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"report{suffix}"
    result = run(str(data), "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    if suffix == ".json":
        assert json.loads(text)["rows"] == 300
    elif suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert rows and set(rows[0]) == {
            "row",
            "given",
            "suggested",
            "self_confidence",
            "suggested_confidence",
            "example",
        }
        assert all(r["given"] != r["suggested"] for r in rows)
    else:
        assert text.startswith("<!doctype html>") and "<h2>Worst slices</h2>" in text and "<table>" in text


def test_json_lines_and_a_custom_model(data: Path, tmp_path: Path, models: Path) -> None:
    jsonl = tmp_path / "data.jsonl"
    pd.read_csv(data).to_json(jsonl, orient="records", lines=True)
    result = run(str(jsonl), "--model", f"{models}:logistic", "--features", "x", "--folds", "3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == f"{models}:logistic" and report["folds"] == 3


def test_parquet(data: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "data.parquet"
    pd.read_csv(data).to_parquet(path)
    result = run(str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 300


def test_classes_smaller_than_the_folds_are_left_out_with_a_note(tmp_path: Path) -> None:
    frame = tabular()
    frame.loc[:2, "label"] = "rare"
    path = tmp_path / "rare.csv"
    frame.to_csv(path, index=False)
    result = run(str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 297 and report["classes"] == 2
    assert any("'rare' (3)" in note and "--folds" in note for note in report["notes"])


def frame_file(tmp_path: Path, frame: pd.DataFrame, name: str = "bad.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


BAD = {
    "missing file": (lambda tmp, models: ["nowhere.csv"], ["no dataset at", "nowhere.csv"]),
    "unknown format": (
        lambda tmp, models: [frame_file(tmp, tabular(), "data.xlsx")],
        ["cannot tell the format", ".xlsx", ".csv"],
    ),
    "unknown label column": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--label", "lable"],
        ["--label 'lable'", "did you mean 'label'", "['x', 'kind', 'label']"],
    ),
    "no label column to infer": (
        lambda tmp, models: [frame_file(tmp, tabular().rename(columns={"label": "answer"}))],
        ["no label column", "['x', 'kind', 'answer']", "--label COLUMN"],
    ),
    "one class only": (
        lambda tmp, models: [frame_file(tmp, tabular().assign(label="same"))],
        ["one class only", "'same'", "300 rows"],
    ),
    "too few rows": (lambda tmp, models: [frame_file(tmp, tabular(rows=8))], ["too few rows: 8", "--folds"]),
    "every class too small": (
        lambda tmp, models: [frame_file(tmp, tabular(rows=30).assign(label=["a"] * 26 + ["b"] * 4))],
        ["only 1 class", "'b' (4)", "--folds"],
    ),
    "text is the label": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--text", "label"],
        ["--text 'label' is also the label column"],
    ),
    "unknown feature": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--features", "x,kindd"],
        ["--features 'kindd'", "did you mean 'kind'"],
    ),
    "bad out suffix": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--out", str(tmp / "report.txt")],
        ["--out", "'.txt'", ".json, .csv or .html"],
    ),
    "out in a missing folder": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--out", str(tmp / "nowhere" / "report.csv")],
        ["--out", "nowhere/report.csv", "no folder", "create it"],
    ),
    "model spec without factory": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--model", "sklearn"],
        ["--model 'sklearn'", "MODULE:FACTORY"],
    ),
    "model module missing": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--model", "no_such_module_here:make"],
        ["importing 'no_such_module_here' raised ModuleNotFoundError"],
    ),
    "model factory missing": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--model", f"{models}:make_model"],
        ["has no callable 'make_model'", "'logistic'"],
    ),
    "model factory not callable": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--model", f"{models}:NOT_CALLABLE"],
        ["has no callable 'NOT_CALLABLE'"],
    ),
    "model without predict_proba": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--model", f"{models}:no_proba"],
        ["returned NoProba", "no fit and predict_proba"],
    ),
    "model fit fails": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--model", f"{models}:logistic"],
        ["on fold 1: fit raised ValueError", "could not convert string to float"],
    ),
    "non-numeric probabilities": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--model", f"{models}:words"],
        ["fold 1", "predict_proba returned values that are not numbers"],
    ),
    "scores that are not probabilities": (
        lambda tmp, models: [frame_file(tmp, tabular()), "--model", f"{models}:scores"],
        ["predict_proba row 0 is [3.0, 3.0]", "not a probability distribution", "CalibratedClassifierCV"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gets_a_clear_error(case: str, tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_args, expected = BAD[case]
    result = run(*make_args(tmp_path, models))
    assert result.exit_code == 2, result.output
    message = result.stderr
    assert message.startswith("error: ")
    for part in expected:
        assert part in message, message
    assert "Traceback" not in result.output


def test_a_flag_out_of_range_is_refused_by_the_parser(data: Path) -> None:
    result = run(str(data), "--folds", "1")
    assert result.exit_code == 2
    assert "--folds" in result.output and "1" in result.output


def test_folds_in_parallel_give_the_same_report(data: Path) -> None:
    one, two = run(str(data), "--json"), run(str(data), "--json", "--jobs", "2")
    assert one.exit_code == two.exit_code == 0, one.output + two.output
    first, second = json.loads(one.stdout), json.loads(two.stdout)
    assert first["issues"] == second["issues"] and first["accuracy"] == second["accuracy"]
