"""The on-disk spool the prediction log falls back to while the store is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_fixtures import make_record

from shipway.store.records import PredictionRecord
from shipway.store.spool import Spool, decode_line, encode_line


def test_a_line_keeps_the_exact_bytes_even_with_newlines() -> None:
    record = make_record(
        1,
        inputs=b'{\n  "text": "two\\nlines",\n  "emoji": "\xf0\x9f\x9a\xa2"\n}\n',
        rules_version="r1",
        status=500,
    )
    line = encode_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_line(line) == record


def test_append_then_replay_oldest_first_and_delete(tmp_path: Path) -> None:
    first, second = Spool(tmp_path), Spool(tmp_path)
    first.append([make_record(1), make_record(2)])
    first.close()
    second.append([make_record(3)])
    second.close()
    assert len(first.files()) == 2
    got: list[PredictionRecord] = []
    assert Spool(tmp_path).replay(got.extend) == 3
    assert [r.request_id for r in got] == ["req-1", "req-2", "req-3"]
    assert Spool(tmp_path).files() == []


def test_a_file_held_by_a_live_writer_is_not_replayed(tmp_path: Path) -> None:
    owner = Spool(tmp_path)
    owner.append([make_record(1)])
    got: list[PredictionRecord] = []
    assert Spool(tmp_path).replay(got.extend) == 0
    assert got == [] and len(owner.files()) == 1
    owner.close()  # released, e.g. by the owner's death
    assert Spool(tmp_path).replay(got.extend) == 1


def test_a_failed_replay_keeps_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([make_record(i) for i in range(10)])

    def fail(records: list[PredictionRecord]) -> None:
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError):
        spool.replay(fail, chunk_size=3)
    assert len(spool.files()) == 1
    got: list[PredictionRecord] = []
    assert spool.replay(got.extend, chunk_size=3) == 10
    assert len(got) == 10 and spool.files() == []


def test_damaged_lines_are_kept_aside_not_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([make_record(1)])
    path = spool.files()[0]
    spool.close()
    with open(path, "ab") as f:
        f.write(b'{"request_id": "half a li')  # a process killed mid-write
    got: list[PredictionRecord] = []
    assert spool.replay(got.extend) == 1
    rejected = list(tmp_path.glob("rejected-*.jsonl"))
    assert len(rejected) == 1 and b"half a li" in rejected[0].read_bytes()
    assert spool.files() == []
