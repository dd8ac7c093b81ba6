"""`shipway score --jobs N`: workers read, score and write their own parts; the output is the one job's."""

from __future__ import annotations

import csv
import multiprocessing
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from shipway.cli.main import main as cli
from shipway.errors import DataError, WorkerError
from shipway.scoring import score

SERVICES = Path(__file__).resolve().parents[1] / "services"
SCORER = SERVICES / "scorer"

BASE: list[dict[str, Any]] = [
    {"text": "lost card", "channel": "phone", "priority": 1},
    {"text": "hello there"},
    {"channel": "web"},  # no text: fails the input schema
    {"text": "boom"},  # predict_batch raises on it: only this row fails
    {"text": "stolen card now", "priority": "x"},  # priority not an integer
    {"text": 'my card,\n"the blue one", is lost', "channel": "web"},  # a quoted newline in CSV
    *({"text": f"card number {i}", "priority": i % 4} for i in range(14)),
]
ROWS = [
    dict(row, text=f"{row['text']} {i}") if row.get("text", "boom") != "boom" else row
    for i in range(150)
    for row in BASE
]


def write(path: Path, rows: list[dict[str, Any]], row_group_size: int | None = None) -> Path:
    names = ["text", "channel", "priority"]
    if path.suffix == ".jsonl":
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    elif path.suffix == ".csv":
        with path.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(names)
            out.writerows([[r.get(n, "") for n in names] for r in rows])
    else:
        columns = {n: [None if r.get(n) is None else str(r[n]) for r in rows] for n in names}
        pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def same(a: Path, b: Path) -> None:
    one, two = pq.read_table(a), pq.read_table(b)
    assert one.schema.equals(two.schema, check_metadata=True)
    assert one.equals(two) and one.num_rows > 0


@pytest.mark.parametrize(
    ("name", "row_group_size"),
    [("in.csv", None), ("in.jsonl", None), ("in.parquet", 500), ("in.parquet", None)],
    ids=["csv-quoted-newlines", "jsonl", "parquet-row-groups", "parquet-one-row-group"],
)
def test_two_and_three_jobs_write_what_one_job_writes(tmp_path: Path, name: str, row_group_size: int | None) -> None:
    data = write(tmp_path / name, ROWS, row_group_size)
    if row_group_size is None and name.endswith(".parquet"):
        assert pq.ParquetFile(data).metadata.num_row_groups == 1
    one = score(SCORER, data, tmp_path / "one.parquet", batch_size=64)
    assert (one.rows, one.errors) == (len(ROWS), 3 * 150)
    assert pq.read_table(tmp_path / "one.parquet").column("error")[5].as_py() is None  # the quoted newline's row
    for jobs in (2, 3):
        summary = score(SCORER, data, tmp_path / f"jobs{jobs}.parquet", batch_size=64, jobs=jobs)
        assert (summary.rows, summary.errors, summary.ids) == (one.rows, one.errors, one.ids)
        same(tmp_path / "one.parquet", tmp_path / f"jobs{jobs}.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "one.parquet", "jobs2.parquet", "jobs3.parquet"])


def test_workers_report_progress_as_they_score(tmp_path: Path) -> None:
    data = write(tmp_path / "in.jsonl", ROWS)
    heard: list[tuple[int, int]] = []
    score(SCORER, data, tmp_path / "out.parquet", batch_size=50, jobs=2, progress=lambda r, e: heard.append((r, e)))
    assert heard[-1] == (len(ROWS), 450) and len(heard) >= len(ROWS) // 50
    assert [r for r, _ in heard] == sorted(r for r, _ in heard)


def test_fewer_rows_than_jobs(tmp_path: Path) -> None:
    for suffix in (".csv", ".jsonl", ".parquet"):
        data = write(tmp_path / f"in{suffix}", BASE[:2])
        score(SCORER, data, tmp_path / f"one{suffix}.parquet")
        summary = score(SCORER, data, tmp_path / f"four{suffix}.parquet", jobs=4)
        assert summary.rows == 2
        same(tmp_path / f"one{suffix}.parquet", tmp_path / f"four{suffix}.parquet")


def test_an_empty_dataset_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    header = tmp_path / "in.csv"
    header.write_text("text,channel,priority\n")
    blank = tmp_path / "in.jsonl"
    blank.write_text("\n\n")
    empty = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), empty)
    for data in (header, blank, empty):
        with pytest.raises(DataError, match="holds no rows"):
            score(SCORER, data, tmp_path / "out.parquet", jobs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "in.jsonl", "in.parquet"]


def test_a_worker_that_crashes_stops_the_run_naming_its_part_and_leaves_no_file(tmp_path: Path) -> None:
    project = tmp_path / "crashing"
    project.mkdir()
    (project / "service.py").write_text(
        "import os\n\n\n"
        "def predict(text: str) -> float:\n    return len(text) / 2\n\n\n"
        "def predict_batch(texts: list[str]) -> list[float]:\n"
        "    if 'crash' in texts:\n"
        "        os._exit(7)  # as a segfault in a model's native code would end the process\n"
        "    return [len(t) / 2 for t in texts]\n"
    )
    texts = [f"text {i}" for i in range(4000)]
    texts[3500] = "crash"
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n" for t in texts))
    out = tmp_path / "out" / "scored.parquet"
    with pytest.raises(
        WorkerError, match=r"part \d of 8 \(bytes [\d,]+ to [\d,]+ of .*in\.jsonl\) stopped \(exit code 7\)"
    ):
        score(project, data, out, jobs=2, batch_size=100)
    assert not out.exists() and list(out.parent.iterdir()) == []  # no output, no partial file, no parts
    result = CliRunner().invoke(cli, ["score", str(data), "--out", str(out), "--target", str(project), "--jobs", "2"])
    assert result.exit_code == 2 and "stopped (exit code 7)" in result.output
    assert not out.exists()


class Stop(Exception):
    pass


def test_a_run_stopped_midway_stops_its_workers_and_leaves_nothing(tmp_path: Path) -> None:
    # As Ctrl-C would: the progress callback raises while the workers are scoring.
    data = write(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out" / "scored.parquet"

    def stop(rows: int, errors: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        score(SCORER, data, out, batch_size=50, jobs=2, progress=stop)
    assert list(out.parent.iterdir()) == []
    assert [p for p in multiprocessing.active_children() if p.name == "shipway-part"] == []  # the workers are gone
