"""The prediction log exported to Parquet: exactly once, resumable after a real crash, retention,
and reads through DuckDB that equal the store's on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("duckdb")

import pyarrow.compute as pc
import pyarrow.parquet as pq

from shipway.errors import ExportError
from shipway.experiments.backtest import backtest
from shipway.monitoring.drift.comparison import compare
from shipway.monitoring.drift.profile import Profile
from shipway.monitoring.drift.window import window_from_store
from shipway.rules import load_rules
from shipway.store import PredictionRecord, Store, open_store
from shipway.store.columnar import LogSchema, read_log, read_state, records_of_table, window_parts
from shipway.store.export import Exporter
from shipway.store.records import FeedbackRecord

pytest_plugins = ["store_fixtures"]

DAY = 86400.0
T0 = 1_764_892_800.0  # 2025-12-05 00:00 UTC
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "count": {"type": "integer"},
        "country": {"type": "string"},
        "premium": {"type": "boolean"},
        "customer": {"$ref": "#/$defs/Customer"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "$defs": {"Customer": {"type": "object", "properties": {"age": {"type": "integer"}}}},
}
OUTPUT_SCHEMA = {"type": "object", "properties": {"intent": {"type": "string"}, "probability": {"type": "number"}}}
SCHEMA = LogSchema.from_json_schemas(INPUT_SCHEMA, OUTPUT_SCHEMA)
INTENTS = ["card", "refund", "transfer", "fee"]


def record(i: int, *, shift: float = 0.0, ts: float | None = None, model: str = "m-1") -> PredictionRecord:
    item = {
        "amount": round((i * 7919 % 1000) / 10 + shift, 2),
        "count": i % 5,
        "country": ["fr", "de", "uk"][i % 3],
        "premium": i % 4 == 0,
        "customer": {"age": 18 + i % 60},
        "note": None if i % 10 == 0 else f"note {i % 7}",
    }
    answer = {"intent": INTENTS[(i * 31) % 4], "probability": round((i * 37 % 100) / 100, 2)}
    return PredictionRecord(
        f"r{i}",
        T0 + i * 97.0 if ts is None else ts,
        "svc",
        model,
        1.0 + i % 9,
        orjson.dumps(item),
        orjson.dumps(answer),
        rules_version="rules-1",
    )


def fill(store: Store, start: int, stop: int, *, chunk: int = 250, **kwargs: Any) -> list[PredictionRecord]:
    records = [record(i, **kwargs) for i in range(start, stop)]
    for at in range(0, len(records), chunk):
        store.write_predictions(records[at : at + chunk])
    return records


def exported(store: Store, root: Path, **window: Any) -> list[PredictionRecord]:
    table = read_log(store, root, **window)
    assert table is not None
    return list(records_of_table(table))


def test_export_then_read_equals_the_store(store_url: str, tmp_path: Path) -> None:
    root = tmp_path / "export"
    with open_store(store_url, tmp_path) as store:
        fill(store, 0, 1500)
        fill(store, 1500, 1800, model="m/2")
        first = Exporter(store, root, SCHEMA, batch_rows=400).run()
        assert first.rows == 1800
        fill(store, 1800, 2000)  # logged after the export: read from the store
        everything = store.read_predictions()
        assert exported(store, root) == everything
        since, until = T0 + 3 * DAY, T0 + 5 * DAY + 100
        assert exported(store, root, since=since, until=until) == store.read_predictions(since=since, until=until)
        assert exported(store, root, service="other") == []

        second = Exporter(store, root, SCHEMA).run()
        assert second.rows == 200  # only what is new
        assert Exporter(store, root, SCHEMA).run().rows == 0
        assert exported(store, root) == everything
    state = read_state(root)
    assert state is not None and state.rows == 2000
    days = sorted(p.name for p in (root / "predictions").iterdir())
    assert days[0] == "day=2025-12-05" and len(days) == 3
    assert (root / "predictions" / "day=2025-12-06" / "model_version=m%2F2").is_dir()


def test_typed_columns_follow_the_schemas(tmp_path: Path) -> None:

    with open_store(f"sqlite:///{tmp_path / 'log.db'}") as store:
        fill(store, 0, 20)
        store.write_predictions([record(20)])
        odd = record(21)
        odd.inputs = b'{"amount": "12", "count": 2.5, "country": 3}'  # not the schema's types
        store.write_predictions([odd, PredictionRecord("bad", T0, "svc", "m-1", 1.0, b"{not json", b"{}")])
        Exporter(store, tmp_path / "x", SCHEMA).run()
        table = read_log(store, tmp_path / "x")
    assert table is not None
    types = {name: str(table.schema.field(name).type) for name in table.column_names if "." in name}
    assert types == {
        "input.amount": "double",
        "input.count": "int64",
        "input.country": "string",
        "input.premium": "bool",
        "input.customer": "string",
        "input.note": "string",
        "output.intent": "string",
        "output.probability": "double",
    }
    rows = {r["request_id"]: r for r in table.to_pylist()}
    assert rows["r3"]["input.customer"] == '{"age":21}' and rows["r3"]["input.count"] == 3
    assert rows["r21"]["input.amount"] is None and rows["r21"]["input.count"] is None
    assert rows["r21"]["inputs"] == odd.inputs.decode()  # the document keeps what the column could not
    assert rows["bad"]["documents_ok"] is False and rows["bad"]["input.amount"] is None


def test_an_export_of_another_store_is_refused_and_not_read(tmp_path: Path) -> None:
    root = tmp_path / "export"
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as a:
        fill(a, 0, 10)
        Exporter(a, root, SCHEMA).run()
    with open_store(f"sqlite:///{tmp_path / 'b.db'}") as b:
        with pytest.raises(ExportError, match=r"holds the log of the store .*a\.db.*set export.dir"):
            Exporter(b, root, SCHEMA).run()
        assert read_log(b, root) is None


def test_a_damaged_state_file_says_how_to_recover(tmp_path: Path) -> None:
    root = tmp_path / "export"
    root.mkdir()
    (root / "_state.json").write_text("{")
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store, pytest.raises(ExportError, match="delete the folder"):
        Exporter(store, root, SCHEMA).run()


CRASHING_EXPORT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from shipway.store import open_store
    from shipway.store.columnar import LogSchema
    from shipway.store.export import Exporter
    schema = LogSchema.from_json_schemas(*__import__("json").loads(sys.argv[3]))
    with open_store(sys.argv[1]) as store:
        Exporter(store, Path(sys.argv[2]), schema, batch_rows=300).run()
    """
)


def uncommitted(root: Path) -> list[Path]:
    """Part files above the state's run number: written, not committed."""
    state = read_state(root)
    seq = state.seq if state is not None else 0
    return [p for p in root.glob("predictions/*/*/part-*.parquet") if int(p.name[5:15]) > seq]


def test_an_export_killed_between_its_files_and_its_state_loses_and_repeats_nothing(
    store_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "export"
    with open_store(store_url, tmp_path) as store:
        # Many days per batch: a batch writes many files before it commits them.
        fill(store, 0, 6000, ts=None, chunk=300)
        expected = store.read_predictions()
        caught = False
        for _ in range(30):
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CRASHING_EXPORT,
                    store_url,
                    str(root),
                    json.dumps([INPUT_SCHEMA, OUTPUT_SCHEMA]),
                ],
                cwd=tmp_path,
            )
            # Killed once a batch is committed and the next one's files are partly written.
            while proc.poll() is None and not (read_state(root) and uncommitted(root)):
                pass
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                caught = bool(read_state(root) and uncommitted(root))
                if caught:
                    break
            else:
                assert proc.returncode == 0
                root_state = read_state(root)
                assert root_state is not None
                if root_state.rows == len(expected):  # finished before it could be caught: again
                    import shutil

                    shutil.rmtree(root)
        assert caught, "no export was killed with written but uncommitted files in 30 tries"
        assert exported(store, root) == expected  # the reader skips the crashed run's files
        Exporter(store, root, SCHEMA).run()
        assert not uncommitted(root)
        assert exported(store, root) == expected
        state = read_state(root)
        assert state is not None and state.rows == len(expected)


def test_retention_drops_or_archives_old_days_and_reads_fall_back_to_the_store(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'log.db'}") as store:
        records = fill(store, 0, 2000)  # 2000 * 97 s: about 2.2 days
        now = T0 + 2 * DAY + 3600
        result = Exporter(store, tmp_path / "a", SCHEMA, retention_days=1).run(now=now)
        assert result.dropped == ["day=2025-12-05"]
        assert not (tmp_path / "a" / "predictions" / "day=2025-12-05").exists()
        # A window from before the cutoff is read whole from the store; a later one from the export.
        assert read_log(store, tmp_path / "a", since=T0) is None
        assert exported(store, tmp_path / "a", since=T0 + DAY) == [r for r in records if r.ts >= T0 + DAY]

        archive = tmp_path / "archive"
        kept = Exporter(store, tmp_path / "b", SCHEMA, retention_days=1, archive_dir=archive).run(now=now)
        assert kept.archived == ["day=2025-12-05"]
        assert list((archive / "predictions" / "day=2025-12-05").glob("model_version=m-1/part-*.parquet"))


def test_an_engine_s_window_parts_hold_the_rows_a_read_of_the_store_holds(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'log.db'}") as store:
        records = fill(store, 0, 2000)  # about 2.2 days
        now = T0 + 2 * DAY + 3600
        Exporter(store, tmp_path / "a", SCHEMA, retention_days=1).run(now=now)
        later = fill(store, 2000, 2100)  # logged after the export: the store's tail
        window = T0 + DAY, None
        files, tail = window_parts(store, tmp_path / "a", "svc", *window)
        assert files and tail.column("request_id").to_pylist() == [r.request_id for r in later]
        from_files = sum(pq.read_table(f).filter(pc.field("ts") >= T0 + DAY).num_rows for f in files)
        assert from_files + tail.num_rows == len([r for r in records + later if r.ts >= T0 + DAY])
        # Retention dropped the first day from the export: every row of the window from the store.
        files, every = window_parts(store, tmp_path / "a", "svc", T0, None)
        assert files == [] and every.column("request_id").to_pylist() == [r.request_id for r in records + later]
        assert window_parts(store, tmp_path / "a", "another service", T0, None)[1].num_rows == 0


def test_feedback_is_exported_as_a_snapshot_when_it_changes(store_url: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "export"
    with open_store(store_url, tmp_path) as store:
        fill(store, 0, 10)

        def describe(outputs: bytes, name: str, value: Any) -> tuple[str | None, float | None, int | None]:
            return orjson.loads(outputs)["intent"], None, None

        store.write_feedback([FeedbackRecord("r1", b'"card"', ts=T0 + 200)], describe)
        assert Exporter(store, root, SCHEMA).run().feedback_rows == 1
        assert Exporter(store, root, SCHEMA).run().feedback_rows is None
        store.write_feedback([FeedbackRecord("r1", b'"fee"', ts=T0 + 300)], describe)  # replaces the value
        assert Exporter(store, root, SCHEMA).run().feedback_rows == 1
    files = list((root / "feedback").glob("*.parquet"))
    assert len(files) == 1
    assert pq.read_table(files[0]).column("actual").to_pylist() == ["fee"]


def profile() -> Profile:
    reference = [orjson.loads(record(i).inputs) for i in range(3000, 5000)]
    answers = [orjson.loads(record(i).outputs) for i in range(3000, 5000)]
    return Profile.build(reference, answers)


def test_a_drift_window_from_the_export_equals_the_store_s(store_url: str, tmp_path: Path) -> None:
    reference = profile()
    root = tmp_path / "export"
    with open_store(store_url, tmp_path) as store:
        fill(store, 0, 1200, shift=5.0)
        Exporter(store, root, SCHEMA).run()
        fill(store, 1200, 1500, shift=5.0)  # the tail, not exported yet
        since, until = T0 + 3600, T0 + 1400 * 97.0
        ours = window_from_store(store, service="svc", since=since, until=until, profile=reference, export=root)
        today = window_from_store(store, service="svc", since=since, until=until, profile=reference)
    assert ours.n_rows == today.n_rows == 1400 - 38
    assert (ours.first_ts, ours.last_ts, ours.excluded) == (today.first_ts, today.last_ts, today.excluded)
    assert compare(reference, ours).to_dict() == compare(reference, today).to_dict()


def test_a_backtest_from_the_export_equals_the_store_s(store_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: r2\ndefault: {queue: general}\nrules:\n  - name: low\n    when: output.probability < 0.3\n"
        "    then: {queue: human}\n"
    )
    proposed = load_rules(rules, input_schema=INPUT_SCHEMA, output_schema=OUTPUT_SCHEMA)
    root = tmp_path / "export"
    with open_store(store_url, tmp_path) as store:
        fill(store, 0, 800)
        Exporter(store, root, SCHEMA).run()
        fill(store, 800, 900)
        table = read_log(store, root, service="svc")
        assert table is not None
        ours = backtest(records_of_table(table), None, proposed).to_dict()
        today = backtest(store.iter_predictions(service="svc"), None, proposed).to_dict()
    assert ours == today and ours["changed"] > 0


SERVICE_PY = """
from pydantic import BaseModel


class Customer(BaseModel):
    age: int


class Item(BaseModel):
    amount: float
    count: int
    country: str
    premium: bool
    customer: Customer
    note: str | None = None


class Answer(BaseModel):
    intent: str
    probability: float


def predict(item: Item) -> Answer:
    return Answer(intent="card", probability=0.5)
"""


def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "service.py").write_text(SERVICE_PY)
    (folder / "shipway.toml").write_text('name = "svc"\n')
    return folder


def test_the_export_command_types_columns_from_the_service_s_schemas(store_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from shipway.cli import main as cli

    folder = project(tmp_path)
    with open_store(store_url, tmp_path) as store:
        fill(store, 0, 300)
    result = CliRunner().invoke(cli, ["export", str(folder), "--store", store_url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"] == 300
    state = read_state(folder / ".shipway" / "export")
    assert state is not None
    assert [(f.column, f.kind) for f in state.schema.fields] == [
        ("input.amount", "float"),
        ("input.count", "int"),
        ("input.country", "str"),
        ("input.premium", "bool"),
        ("input.customer", "json"),
        ("input.note", "str"),
        ("output.intent", "str"),
        ("output.probability", "float"),
    ]
    again = CliRunner().invoke(cli, ["export", str(folder), "--store", store_url])
    assert again.exit_code == 0 and again.output.startswith("exported 0 predictions"), again.output


def test_export_follow_keeps_up_and_stops_on_sigterm(tmp_path: Path) -> None:
    from store_fixtures import wait_for

    folder = project(tmp_path)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with open_store(url) as store:
        fill(store, 0, 100)
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipway", "export", str(folder), "--store", url, "--follow", "--interval", "0.2"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            root = folder / ".shipway" / "export"

            def exported_rows() -> int:
                state = read_state(root)
                return state.rows if state is not None else 0

            wait_for(lambda: exported_rows() == 100, what="the first 100 rows exported")
            fill(store, 100, 250)
            wait_for(lambda: exported_rows() == 250, what="the next 150 rows exported")
            assert exported(store, root) == store.read_predictions()
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "exported 100 predictions" in out and "exported 150 predictions" in out


def test_the_slowest_predictions_from_the_export_equal_the_store_s(store_url: str, tmp_path: Path) -> None:
    from shipway.monitoring.metrics.online import recent_predictions
    from shipway.store.outcomes import describe_fields

    describe = describe_fields("intent", "probability", "")
    root = tmp_path / "export"
    with open_store(store_url, tmp_path) as store:
        fill(store, 0, 400)
        Exporter(store, root, SCHEMA).run()
        fill(store, 400, 450)
        for order in ("slowest", "uncertain"):
            window = {"since": T0 + 1000, "limit": 7, "order": order, "describe": describe}
            ours = recent_predictions(store, "svc", export=root, **window)
            today = recent_predictions(store, "svc", **window)
            assert ours == today and len(ours) == 7


def test_a_document_that_is_not_json_is_flagged_on_the_fast_path_too(tmp_path: Path) -> None:
    inputs_only = LogSchema.from_json_schemas({"type": "object", "properties": {"count": {"type": "integer"}}}, None)
    with open_store(f"sqlite:///{tmp_path / 'log.db'}") as store:
        fill(store, 0, 5)
        store.write_predictions([PredictionRecord("bad-out", T0, "svc", "m-1", 1.0, b'{"count": 1}', b"{nope")])
        Exporter(store, tmp_path / "x", inputs_only).run()
        table = read_log(store, tmp_path / "x")
    assert table is not None
    rows = {r["request_id"]: r for r in table.to_pylist()}
    assert rows["bad-out"]["documents_ok"] is False and rows["r1"]["documents_ok"] is True
    assert rows["r1"]["input.count"] == 1
