"""A dataset in parts: the parts' rows, one part after the other, are the file's rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipway.engine import Source
from shipway.engine.parts import Part, plan, run_parts
from shipway.errors import WorkerError


def rows_in_parts(source: Source, parts: list[Part], size: int = 7) -> list[Any]:
    return [row for part in parts for chunk in part.chunks(size) for row in chunk.rows()]


def whole(source: Source, size: int = 7) -> list[Any]:
    return [row for chunk in source.chunks(size) for row in chunk.rows()]


def test_csv_without_quotes_is_cut_in_byte_ranges_at_line_starts(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("text,n\n" + "".join(f"row {i},{i if i % 5 else ''}\n" for i in range(3000)) + "\n\nlast,x")
    source = Source.open(path)
    parts = plan(source, 3, tmp_path)
    assert len(parts) > 3 and {p.unit for p in parts} == {"bytes"}
    assert parts[0].start == len("text,n\n") and parts[-1].stop == path.stat().st_size
    data = path.read_bytes()
    assert all(data[p.start - 1 : p.start] == b"\n" for p in parts)
    rows = rows_in_parts(source, parts)
    assert rows == whole(source) and len(rows) == 3001 and rows[5] == {"text": "row 5"}


def test_csv_with_quoted_newlines_is_read_once_and_cut_in_rows(tmp_path: Path) -> None:
    # Long enough that a quoted newline falls across the reader's blocks (1 MB).
    path = tmp_path / "in.csv"
    rows = [f'"line {i}\nstill {i}, ""quoted""",{i}' for i in range(40_000)]
    path.write_text("text,n\n" + "\n".join(rows) + '\n5" screen,plain\n')
    assert path.stat().st_size > 1 << 20
    source = Source.open(path)
    parts = plan(source, 2, tmp_path)
    assert len(parts) == 8 and all(p.converted is not None and p.unit == "rows" for p in parts)
    got = rows_in_parts(source, parts, size=1000)
    assert got == whole(source, size=1000)
    assert got[39_999] == {"text": 'line 39999\nstill 39999, "quoted"', "n": "39999"}
    assert got[-1] == {"text": '5" screen', "n": "plain"} and len(got) == 40_001


def test_json_lines_are_cut_at_line_starts_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [orjson.dumps({"text": f"t{i}", "i": i}) if i % 9 else b"  " for i in range(5000)]
    path.write_bytes(b"\n".join(lines) + b'\n{"text": "oops"\n{"text": "no newline at the end"}')
    source = Source.open(path)
    parts = plan(source, 2, tmp_path)
    assert len(parts) == 8
    got = rows_in_parts(source, parts)
    assert got == whole(source) and len(got) == 5000 - 556 + 2
    assert got[0] == {"text": "t1", "i": 1} and "not JSON" in next(iter(got[-2].values()))


@pytest.mark.parametrize("row_group_size", [200_000, 1000, 333])
def test_parquet_is_cut_in_row_ranges(tmp_path: Path, row_group_size: int) -> None:
    path = tmp_path / "in.parquet"
    n = 20_000
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(n)], "n": range(n)}), path, row_group_size=row_group_size)
    source = Source.open(path)
    parts = plan(source, 2, tmp_path)
    assert len(parts) == 8 and parts[0].start == 0 and parts[-1].stop == n
    if row_group_size == 1000:  # near a row group's start: cut there
        assert all(p.start % 1000 == 0 for p in parts)
    assert rows_in_parts(source, parts, size=1024) == whole(source, size=1024)


def test_a_folder_of_parquet_files_keeps_its_order(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for f in range(3):
        rows = pa.array(range(f * 3000, (f + 1) * 3000), pa.int32() if f == 1 else pa.int64())
        pq.write_table(pa.table({"i": rows}), folder / f"part-{f}.parquet", row_group_size=700)
    source = Source.open(folder)
    parts = plan(source, 2, tmp_path)
    got = [chunk.table for part in parts for chunk in part.chunks(500)]
    assert {t.schema.field("i").type for t in got} == {pa.int64()}  # the dataset's type, the first file's
    assert [r["i"] for r in rows_in_parts(source, parts)] == list(range(9000)) == [r["i"] for r in whole(source)]


def test_empty_files_and_fewer_rows_than_jobs(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_text("text,n\n")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n")
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), empty)
    assert plan(Source.open(header), 2, tmp_path) == [] and plan(Source.open(empty), 2, tmp_path) == []
    assert rows_in_parts(Source.open(blank), plan(Source.open(blank), 2, tmp_path)) == []
    one = tmp_path / "one.parquet"
    pq.write_table(pa.table({"text": ["only"]}), one)
    parts = plan(Source.open(one), 4, tmp_path)
    assert len(parts) == 1 and rows_in_parts(Source.open(one), parts) == [{"text": "only"}]
    two = tmp_path / "two.jsonl"
    two.write_text('{"a": 1}\n{"a": 2}\n')
    parts = plan(Source.open(two), 4, tmp_path)
    assert len(parts) == 2 and rows_in_parts(Source.open(two), parts) == [{"a": 1}, {"a": 2}]


@dataclass
class Lengths:
    """A job: each row's text length; a row whose text is "die" ends its process."""

    def setup(self) -> None:
        pass

    def __call__(self, rows: list[dict[str, Any]]) -> list[int]:
        if any(row["text"] == "die" for row in rows):
            os._exit(3)
        return [len(row["text"]) for row in rows]


@dataclass(frozen=True)
class Collect:
    """A sink: the part's lengths and the worker's process id back to the parent, the row count reported."""

    def __call__(self, part: Part, results: Iterator[list[int]], report: Callable[[Any], None]) -> Any:
        lengths = [n for result in results for n in result]
        report(len(lengths))
        return lengths, os.getpid()


def texts(path: Path, values: list[str]) -> Source:
    path.write_bytes(b"".join(orjson.dumps({"text": v}) + b"\n" for v in values))
    return Source.open(path)


@pytest.mark.parametrize("preload", [True, False])
def test_workers_run_the_parts_and_the_parent_hears_each(tmp_path: Path, preload: bool) -> None:
    values = ["x" * (i % 13) for i in range(3000)]
    source = texts(tmp_path / "in.jsonl", values)
    parts = plan(source, 2, tmp_path)
    done: dict[int, list[int]] = {}
    reported = 0
    pids = set()
    for kind, part, value in run_parts(Lengths(), parts, Collect(), jobs=2, batch_size=50, preload=preload):
        if kind == "report":
            reported += value
        else:
            done[part.index] = value[0]
            pids.add(value[1])
    assert [n for i in sorted(done) for n in done[i]] == [len(v) for v in values] and reported == 3000
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_worker_that_dies_is_an_error_naming_its_part(tmp_path: Path) -> None:
    values = ["fine"] * 3000
    values[2500] = "die"
    source = texts(tmp_path / "in.jsonl", values)
    parts = plan(source, 2, tmp_path)
    dying = next(p for p in parts if p.start <= len(b'{"text":"fine"}\n') * 2500 < p.stop)
    with pytest.raises(
        WorkerError, match=rf"running part {dying.index + 1} of 8 \(bytes .* of .*in\.jsonl\) stopped \(exit code 3\)"
    ):
        for _ in run_parts(Lengths(), parts, Collect(), jobs=2, batch_size=50, preload=True):
            pass
