"""Dataset content versions and descriptions."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipway.errors import DataError
from shipway.experiments import split_descriptions as datasets
from shipway.experiments.dataset_versions import content_version, describe

ROWS = 'text,category\n"multi\nline, with a comma",a\n"",b\nplain,a\n"a ""quote""",\n'


def write(folder: Path, text: str = ROWS, name: str = "train.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(text.encode())
    return folder


def test_the_version_is_the_rows_whatever_the_folder_or_line_endings(tmp_path: Path) -> None:
    one = content_version(write(tmp_path / "one"))
    assert content_version(write(tmp_path / "two")) == one
    assert content_version(write(tmp_path / "crlf", ROWS.replace("\n", "\r\n"))) == one
    assert len(one) == 16
    # Another split name, another row order or another row: another version.
    assert content_version(write(tmp_path / "named", name="valid.csv")) != one
    lines = ROWS.splitlines(keepends=True)
    assert content_version(write(tmp_path / "order", lines[0] + "plain,a\n" + "".join(lines[1:4]) + lines[5])) != one
    assert content_version(write(tmp_path / "more", ROWS + "new,b\n")) != one


@pytest.mark.parametrize("arrow_bytes", [0, 1 << 40], ids=["pyarrow", "csv module"])
def test_quoted_rows_are_described_the_same_by_both_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arrow_bytes: int
) -> None:
    monkeypatch.setattr(datasets, "ARROW_BYTES", arrow_bytes)
    rows, labels, columns = describe(write(tmp_path), "category")
    assert rows == {"train": 4} and columns == ["text", "category"]
    assert labels == {"train": {"": 1, "a": 2, "b": 1}}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(alphabet='ab,"\n ', max_size=6), st.text(alphabet='xy,"', max_size=3)),
        max_size=12,
    ),
    st.booleans(),
)
def test_counting_by_lines_agrees_with_the_csv_module_on_any_rows(
    rows: list[tuple[str, str]], label_first: bool
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["category", "text"] if label_first else ["text", "category"])
    writer.writerows([(label, text) if label_first else (text, label) for text, label in rows])
    text = buffer.getvalue()
    counted = datasets._count_lines(text, 0 if label_first else 1)
    expected = Counter(label for _, label in rows)
    if counted is not None:
        assert counted == expected
    if not any("\n" in t for t, _ in rows) and all(t or label_first for t, _ in rows):
        assert counted == expected  # one line a row: counted without the csv module's row loop


def test_rows_the_line_counter_cannot_read_go_to_the_csv_module() -> None:
    assert datasets._count_lines("text,category\nplain\n", 1) is None  # a short row: the csv module names it
    assert datasets._count_lines("text,category\n\nplain,a\n", 1) is None  # an empty line
    assert datasets._count_lines('text,category\n"two\nlines",a\n', 1) is None
    assert datasets._count_lines("text,category\r\nplain,a\r\n", 1) is None
    assert datasets._count_lines('text,category\n"a, b",x\nc,y\nd,x', 1) == Counter({"x": 2, "y": 1})


def test_a_folder_without_splits_is_refused_with_what_to_write(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"has no split files; write one file per split \(train.csv"):
        content_version(tmp_path)
    with pytest.raises(DataError, match="does not exist; build the dataset first with `shipway data build`"):
        content_version(tmp_path / "missing")


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_registering_versions_the_folder_as_content_version_does(tmp_path: Path, newline: str) -> None:
    from shipway.experiments.dataset_versions import register_folder
    from shipway.store.objects import ObjectStore

    folder = write(tmp_path / "data", ROWS.replace("\n", newline))
    write(folder, "a label list\n", name="labels.txt")
    objects = ObjectStore(tmp_path / "objects")
    record = register_folder(folder, name="d", target="category", objects=objects, schema={"text": "str"})
    assert record.version == content_version(folder) == content_version(write(tmp_path / "lf"))
    assert set(record.files) == {"train.csv", "labels.txt"}
    assert objects.get_bytes(record.files["train.csv"]["digest"]) == (folder / "train.csv").read_bytes()
