"""Reading a labelled dataset: which column is the label, the text, the features."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pandas")

import pandas as pd

from shipway.errors import DataError
from shipway.inspection.labelled_data import read_dataset


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_columns_are_inferred_by_name_and_type(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": [f"ticket-{i}" for i in range(40)],
            "body": ["please help me with my card it is blocked again"] * 40,
            "channel": ["app", "web"] * 20,
            "age": range(40),
            "intent": ["card", "fee"] * 20,
        }
    )
    dataset = read_dataset(write(tmp_path, frame))
    assert dataset.label == "intent"
    assert dataset.text == "body"  # not named like text, but its values are long
    assert dataset.numeric == ("age",) and dataset.categorical == ("channel",)
    assert any("'id' left out" in note for note in dataset.notes)
    assert dataset.features == ["body", "age", "channel"]


def test_a_text_only_dataset_gives_the_model_strings(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a b", None, "c"], "label": ["x", "y", "x"]})
    dataset = read_dataset(write(tmp_path, frame))
    inputs = dataset.inputs()
    assert inputs.ndim == 1 and list(inputs) == ["a b", "", "c"]


def test_rows_without_a_label_are_left_out_but_keep_their_row_numbers(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [1, None, 2, 1]})
    dataset = read_dataset(write(tmp_path, frame))
    assert list(dataset.frame.index) == [0, 2, 3]
    # Read as floats because of the gap, written back as the integers they were.
    assert list(dataset.labels) == ["1", "2", "1"]
    assert dataset.describe(2) == "c"
    assert any("1 rows with no 'label'" in note for note in dataset.notes)


def test_several_label_names_pick_the_first_and_say_so(tmp_path: Path) -> None:
    frame = pd.DataFrame({"category": ["a", "b"] * 5, "label": ["x", "y"] * 5, "n": range(10)})
    dataset = read_dataset(write(tmp_path, frame))
    assert dataset.label == "label" and dataset.categorical == ("category",)
    assert any("also found ['category']" in note for note in dataset.notes)


def test_explicit_features_and_a_missing_category(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": ["u", None, "v"], "b": [1.0, 2.0, None], "c": [0, 1, 2], "label": ["x", "y", "x"]})
    dataset = read_dataset(write(tmp_path, frame), features=["b", "a"])
    assert dataset.text is None and dataset.features == ["b", "a"]
    assert list(dataset.frame["a"]) == ["u", "(missing)", "v"]


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        ("", "empty.csv", "cannot read"),
        ("label,text\n", "header.csv", "has no rows"),
        ('{"label": 1', "broken.jsonl", "cannot read"),
    ],
)
def test_files_that_cannot_be_used(tmp_path: Path, content: str, name: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=expected):
        read_dataset(path)


def test_a_folder_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        read_dataset(tmp_path)
