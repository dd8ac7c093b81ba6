"""The local engine: results in order, a bounded number of batches in flight, small chunks to ship."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipway.engine import Source, run
from shipway.engine.row_batches import Chunk
from shipway.errors import DataError


@dataclass
class Lengths:
    """A job: each row's text length, and the process that computed it."""

    ready: bool = False

    def setup(self) -> None:
        self.ready = True

    def __call__(self, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
        assert self.ready
        return [(len(row["text"]), os.getpid()) for row in rows]


@dataclass(frozen=True)
class Counted(Source):
    """A Parquet source that counts the chunks it has read."""

    read: list[int] = field(default_factory=list)

    def chunks(self, size: int) -> Iterator[Chunk]:
        for chunk in super().chunks(size):
            self.read.append(len(chunk))
            yield chunk


def texts(path: Path, n: int) -> Path:
    pq.write_table(pa.table({"text": ["x" * (i % 50) for i in range(n)]}), path, row_group_size=333)
    return path


def test_workers_take_at_most_two_batches_each_ahead_of_the_reader(tmp_path: Path) -> None:
    source = Counted(texts(tmp_path / "in.parquet", 2000), "parquet")
    got: list[tuple[int, int]] = []
    for taken, result in enumerate(run(Lengths(), source, jobs=2, batch_size=50, preload=True), start=1):
        # Reading waits for the workers: never more than two batches per worker in flight.
        assert len(source.read) <= taken + 2 * 2
        got.extend(result)
    assert [n for n, _ in got] == [i % 50 for i in range(2000)]  # in the file's order
    assert len(source.read) == 40 and {pid for _, pid in got} - {os.getpid()}  # in worker processes


def test_a_chunk_ships_its_own_rows_only() -> None:
    table = pa.table({"text": ["x" * (i % 50) for i in range(20_000)]})
    chunk = Chunk(table.slice(5_000, 100))
    shipped = pickle.loads(pickle.dumps(chunk))
    assert shipped.rows() == chunk.rows() == [{"text": "x" * (i % 50)} for i in range(5_000, 5_100)]
    # A pickled slice of a table would carry all 20,000 rows' buffers.
    assert len(pickle.dumps(chunk)) * 20 < len(pickle.dumps(table.slice(5_000, 100)))


def test_missing_cells_are_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["a", None, "c"], "n": [1, 2, None]}), path)
    assert Source.open(path).chunks(10).__next__().rows() == [{"text": "a", "n": 1}, {"n": 2}, {"text": "c"}]


def test_a_tail_is_read_after_the_files_with_their_columns_and_types(tmp_path: Path) -> None:
    files = [texts(tmp_path / "a.parquet", 120), texts(tmp_path / "b.parquet", 80)]
    # The store's tail as the export builds it: more columns than a job selects, and its own types.
    tail = pa.table({"text": pa.array(["y" * 51, "y" * 52], pa.large_string()), "other": [1, 2]})
    source = Source.parquet(files, ["text", "missing"], tail=tail)
    assert source.select == ("text",)
    tables = [chunk.table for chunk in source.chunks(64)]
    assert all(t.schema == pa.schema([("text", pa.string())]) for t in tables)
    lengths = [n for result in run(Lengths(), source, batch_size=64) for n, _ in result]
    assert lengths == [i % 50 for i in range(120)] + [i % 50 for i in range(80)] + [51, 52]
    alone = Source.parquet([], ["text"], tail=tail)  # a window that starts after the files' days
    assert [n for result in run(Lengths(), alone, batch_size=64) for n, _ in result] == [51, 52]


def test_no_files_and_an_empty_tail_say_what_to_check() -> None:
    with pytest.raises(DataError, match="no Parquet files"):
        Source.parquet([], ["text"], tail=pa.table({"text": pa.array([], pa.string())}))
