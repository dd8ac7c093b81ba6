"""Batch scoring: a dataset through the project's pipeline, rules included, into typed Parquet."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from shipway.cli.main import main as cli
from shipway.engine import Source
from shipway.errors import DataError, LoadError
from shipway.project import load_pipeline
from shipway.scoring import score

SERVICES = Path(__file__).resolve().parents[1] / "services"
SCORER = SERVICES / "scorer"

ROWS: list[dict[str, Any]] = [
    {"text": "lost card", "channel": "phone", "priority": 1},
    {"text": "hello there"},  # channel and priority take their defaults
    {"channel": "web"},  # no text: fails the input schema
    {"text": "boom"},  # predict_batch raises on it: only this row fails
    {"text": "stolen card now", "priority": "x"},  # priority not an integer
    *({"text": f"card number {i}", "priority": i % 4} for i in range(45)),
]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    elif path.suffix == ".csv":
        names = ["text", "channel", "priority"]
        lines = [",".join(names)] + [",".join(str(r.get(n, "")) for n in names) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    else:
        columns = {n: [None if r.get(n) is None else str(r[n]) for r in rows] for n in ("text", "channel", "priority")}
        pq.write_table(pa.table(columns), path)
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def test_every_row_is_scored_with_its_ids_and_decision(tmp_path: Path) -> None:
    data = write(tmp_path / "in.jsonl", ROWS)
    summary = score(SCORER, data, tmp_path / "out.parquet", batch_size=8)
    assert (summary.rows, summary.errors) == (len(ROWS), 3)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("probability").type == pa.float64()
    assert table.schema.field("words").type == pa.int64()
    assert table.schema.field("hits").type == pa.list_(pa.struct([("word", pa.string()), ("at", pa.int64())]))
    rows = table.to_pylist()
    assert [r["row"] for r in rows] == list(range(len(ROWS)))
    first = rows[0]
    assert (first["label"], first["probability"], first["words"]) == ("card", 1.0, 2)
    assert first["hits"] == [{"word": "lost", "at": 0}, {"word": "card", "at": 1}]
    assert first["decision"]["queue"] == "urgent" and first["decision"]["fired"] == ["urgent-cards"]
    assert {k: first[k] for k in ("service", "model_version", "rules_version", "dataset_version", "run_id")} == {
        "service": "scorer",
        "model_version": "words-3",
        "rules_version": "scorer-rules-1",
        "dataset_version": "ds-7",
        "run_id": "run-42",
    }
    assert rows[1]["label"] == "other" and rows[1]["decision"]["review"] is True
    assert rows[2]["label"] is None and "InputError" in rows[2]["error"] and "text" in rows[2]["error"]
    assert "PredictError" in rows[3]["error"] and "boom" in rows[3]["error"]
    assert "priority" in rows[4]["error"]
    # The pipeline /predict and `shipway predict` run gives the same answer, row by row.
    pipeline = load_pipeline(SCORER)
    for row, scored in zip(ROWS, rows, strict=True):
        if scored["error"] is None:
            expected = pipeline.jsonable(pipeline.run(row))
            assert expected["probability"] == scored["probability"] and expected["hits"] == scored["hits"]
            assert expected["decision"]["queue"] == scored["decision"]["queue"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_the_formats_give_the_same_answers(tmp_path: Path, suffix: str) -> None:
    reference = score(SCORER, write(tmp_path / "ref.jsonl", ROWS), tmp_path / "ref.parquet")
    assert reference.errors == 3
    data = write(tmp_path / f"in{suffix}", ROWS)
    score(SCORER, data, tmp_path / "out.parquet", batch_size=7)
    got, want = read(tmp_path / "out.parquet"), read(tmp_path / "ref.parquet")
    # CSV and the Parquet here hold text: the schema converts "1" to the integer it wants.
    assert [{k: v for k, v in r.items() if k != "error"} for r in got] == [
        {k: v for k, v in r.items() if k != "error"} for r in want
    ]
    assert [r["error"] is None for r in got] == [r["error"] is None for r in want]


def test_the_answer_does_not_depend_on_batches_or_processes(tmp_path: Path) -> None:
    data = write(tmp_path / "in.jsonl", ROWS)
    score(SCORER, data, tmp_path / "one.parquet", batch_size=1000)
    score(SCORER, data, tmp_path / "small.parquet", batch_size=3)
    summary = score(SCORER, data, tmp_path / "two.parquet", batch_size=4, jobs=2)
    assert summary.rows == len(ROWS)
    one = pq.read_table(tmp_path / "one.parquet")
    assert one.equals(pq.read_table(tmp_path / "small.parquet"))
    assert one.equals(pq.read_table(tmp_path / "two.parquet"))


def test_a_line_that_is_not_json_fails_only_its_row(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "lost card"}\n{"text": "oops"\n\n{"text": "hello"}\n')
    summary = score(SCORER, data, tmp_path / "out.parquet")
    rows = read(tmp_path / "out.parquet")
    assert (summary.rows, summary.errors) == (3, 1)  # the blank line is not a row
    assert "not JSON" in rows[1]["error"] and rows[2]["label"] == "other"


def test_without_rules_there_is_no_decision_and_no_rules_version(tmp_path: Path) -> None:
    data = write(tmp_path / "in.jsonl", ROWS[:2])
    score(SCORER, data, tmp_path / "out.parquet", rules=False)
    rows = read(tmp_path / "out.parquet")
    assert [r["decision"] for r in rows] == [None, None] and rows[0]["rules_version"] is None


def test_plain_types_in_and_out_are_one_column(tmp_path: Path) -> None:
    project = tmp_path / "lengths"
    project.mkdir()
    (project / "service.py").write_text(
        "def predict(text: str) -> float:\n    return len(text) / 2\n\n\n"
        "def predict_batch(texts: list[str]) -> list[float]:\n    return [len(t) / 2 for t in texts]\n"
    )
    data = write(tmp_path / "in.csv", [{"text": "abcd"}, {"text": "ab"}])
    score(project, data, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("output").type == pa.float64()
    assert table.column("output").to_pylist() == [2.0, 1.0]
    two = write(tmp_path / "two.jsonl", [{"text": "abcd", "more": 1}])
    score(project, two, tmp_path / "two.parquet")
    assert "exactly one column" in read(tmp_path / "two.parquet")[0]["error"]


def test_bad_datasets_are_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist; check the path"):
        Source.open(tmp_path / "missing.csv")
    odd = tmp_path / "data.txt"
    odd.write_text("x\n")
    with pytest.raises(DataError, match=r"extension '\.txt'.*--format"):
        Source.open(odd)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="holds no rows"):
        score(SCORER, empty, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_cli_scores_and_reports_on_stderr(tmp_path: Path) -> None:
    data = write(tmp_path / "in.csv", ROWS)
    out = tmp_path / "scored.parquet"
    result = CliRunner().invoke(cli, ["score", str(data), "--out", str(out), "--target", str(SCORER), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["errors"]) == (len(ROWS), 3)
    assert summary["ids"]["model_version"] == "words-3"
    result = CliRunner().invoke(cli, ["score", str(data), "--out", str(out), "--target", str(SCORER), "--no-rules"])
    assert result.exit_code == 0 and "scored 50 rows" in result.stdout
    assert read(out)[0]["decision"] is None
    result = CliRunner().invoke(cli, ["score", str(data), "--out", str(tmp_path), "--target", str(SCORER)])
    assert result.exit_code == 2


def test_shipway_predict_runs_the_rules_as_predict_does() -> None:
    result = CliRunner().invoke(cli, ["predict", str(SCORER), '{"text": "lost card", "channel": "phone"}'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decision"]["queue"] == "urgent"


def test_a_model_that_fails_to_load_stops_the_run_with_its_error(tmp_path: Path) -> None:
    # Before: a worker whose setup raised died, and the pool started another for ever.
    data = write(tmp_path / "in.jsonl", ROWS[:3])
    for jobs in (1, 2):
        with pytest.raises(LoadError, match="no GPU found"):
            score(SERVICES / "check_load_fails", data, tmp_path / "out.parquet", jobs=jobs)
    assert not (tmp_path / "out.parquet").exists()


def counting(tmp_path: Path, preload: bool) -> tuple[Path, Path]:
    """The scorer project copied, its load() writing the loading process's id to loads.txt."""
    project = tmp_path / "counting"
    shutil.copytree(SCORER, project)
    loads = project / "loads.txt"
    service = project / "service.py"
    service.write_text(
        service.read_text().replace(
            "def load(artifacts: Path) -> list[str]:\n",
            "def load(artifacts: Path) -> list[str]:\n"
            "    import os\n\n"
            f"    with open({str(loads)!r}, 'a') as fh:\n"
            "        fh.write(f'{os.getpid()}\\n')\n",
        )
    )
    if not preload:
        (project / "shipway.toml").write_text((project / "shipway.toml").read_text() + "\n[serve]\npreload = false\n")
    return project, loads


def test_workers_fork_from_the_one_loaded_model_unless_preload_is_off(tmp_path: Path) -> None:
    data = write(tmp_path / "in.jsonl", ROWS)
    score(SCORER, data, tmp_path / "one.parquet", batch_size=4)
    shared, loads = counting(tmp_path / "shared", preload=True)
    score(shared, data, tmp_path / "shared.parquet", batch_size=4, jobs=2)
    assert loads.read_text().split() == [str(os.getpid())]  # loaded here once, the workers forked after
    own, loads = counting(tmp_path / "own", preload=False)
    score(own, data, tmp_path / "own.parquet", batch_size=4, jobs=2)
    pids = loads.read_text().split()
    assert len(pids) == len(set(pids)) == 2 and str(os.getpid()) not in pids  # one model per worker
    one = pq.read_table(tmp_path / "one.parquet")
    assert one.equals(pq.read_table(tmp_path / "shared.parquet"))
    assert one.equals(pq.read_table(tmp_path / "own.parquet"))
