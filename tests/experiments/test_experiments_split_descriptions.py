"""Splits written through shipway: their description handed over to registration."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipway import write_split
from shipway.errors import DataError
from shipway.experiments.dataset_versions import content_version, register_folder
from shipway.experiments.split_descriptions import HANDOVER, handed_over
from shipway.store.objects import ObjectStore

COLUMNS = ("text", "category")


def register(folder: Path, objects: Path, target: str | None = "category") -> dict[str, Any]:
    schema = {"text": "str"} if target else None
    return register_folder(folder, name="d", target=target, objects=ObjectStore(objects), schema=schema).to_dict()


labels = st.one_of(
    st.text(alphabet='xy,"\r\n ', max_size=3), st.none(), st.integers(-2, 2), st.floats(-2, 2), st.booleans()
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.text(alphabet='ab,"\n\r ', max_size=6), labels), max_size=10),
    st.lists(st.tuples(st.text(alphabet="ab ", max_size=6), labels), min_size=1, max_size=4),
    st.sampled_from(["category", None]),
)
def test_registering_what_was_handed_over_equals_registering_from_the_rows(
    train: list[tuple[str, Any]], valid: list[tuple[str, Any]], target: str | None
) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name) / "data"
        write_split(folder / "train.csv", COLUMNS, train, target=target)
        write_split(folder / "valid.csv", COLUMNS, iter(valid), target=target)
        # A value with a CR makes a file that does not read back as written: not handed over.
        clean = {f"{s}.csv" for s in ("train", "valid") if b"\r" not in (folder / f"{s}.csv").read_bytes()}
        assert set(handed_over(folder)) == clean
        given_over = [outcome(folder, Path(name) / "a", t) for t in ("category", None)]
        (folder / HANDOVER).unlink()
        assert given_over == [outcome(folder, Path(name) / "b", t) for t in ("category", None)]
        if "files" in given_over[0]:
            assert HANDOVER not in given_over[0]["files"]
            assert given_over[0]["version"] == content_version(folder)


def outcome(folder: Path, objects: Path, target: str | None) -> dict[str, Any]:
    """The registered record, or the error registering gives."""
    try:
        return register(folder, objects, target)
    except DataError as err:
        return {"error": str(err)}


def test_a_split_rewritten_after_write_split_is_described_from_its_rows(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    write_split(folder / "train.csv", COLUMNS, [("a", "x"), ("b", "x")], target="category")
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([COLUMNS, ("a", "y"), ("b", "x"), ("c", "y")])
    record = register(folder, tmp_path / "objects")
    assert record["rows"] == {"train": 3}
    assert record["labels"] == {"train": {"x": 1, "y": 2}}


def test_a_handover_for_another_target_or_hand_edited_is_not_used(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    write_split(folder / "train.csv", ("text", "category", "topic"), [("a", "x", "t")], target="topic")
    assert register(folder, tmp_path / "one")["labels"] == {"train": {"x": 1}}
    document = json.loads((folder / HANDOVER).read_text())
    document["splits"]["train.csv"]["rows"] = "many"
    (folder / HANDOVER).write_text(json.dumps(document))
    assert handed_over(folder) == {}
    (folder / HANDOVER).write_text("not json")
    assert register(folder, tmp_path / "two")["rows"] == {"train": 1}


def test_bad_splits_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"the target 'label' is not among the columns \['text', 'category'\]"):
        write_split(tmp_path / "train.csv", COLUMNS, [("a", "x")], target="label")
    with pytest.raises(DataError, match=r"train.csv: row 2 has 1 values for the 2 columns"):
        write_split(tmp_path / "train.csv", COLUMNS, [("a", "x"), ("b",)], target="category")
    with pytest.raises(DataError, match=r"does not end in .csv; name the split <split>.csv"):
        write_split(tmp_path / "train.jsonl", COLUMNS, [("a", "x")])
    assert not (tmp_path / "train.csv").exists()
