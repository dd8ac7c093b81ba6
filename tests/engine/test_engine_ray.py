"""The Ray engine answers exactly as the local one: scoring, a rules backtest, drift summaries.

One local Ray cluster for the module, with its object store capped (Ray otherwise sizes it
from the machine's memory) and two CPUs.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from shipway.cli.main import main as cli
from shipway.engine import Source, run
from shipway.experiments.backtest import BacktestJob, merged
from shipway.monitoring.drift._summaries import KEEP_VALUES
from shipway.monitoring.drift.comparison import compare, compare_summary
from shipway.monitoring.drift.job import DriftJob
from shipway.monitoring.drift.job import merged as merged_summary
from shipway.monitoring.drift.profile import Profile
from shipway.monitoring.drift.thresholds import Thresholds
from shipway.monitoring.drift.window import Window
from shipway.project import load_pipeline
from shipway.scoring import score
from shipway.store import PredictionRecord, open_store
from tests.monitoring.test_monitoring_drift import items
from tests.scoring.test_scoring import ROWS, SCORER, counting, write

ray = pytest.importorskip("ray", reason="the Ray engine needs pip install 'shipway[ray]' (in dev)")

ROUTER = Path(__file__).resolve().parents[1] / "services" / "router"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


def test_scoring_on_ray_reads_quoted_newlines_across_the_csv_reader_s_blocks(cluster: None, tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    with data.open("w", newline="") as fh:  # over 1 MiB: some quoted newline spans two of the reader's blocks
        out = csv.writer(fh)
        out.writerow(["text", "channel", "priority"])
        out.writerows([f'my card,\n"the blue one", is lost {i} ' + "x" * 40, "web", i % 4] for i in range(20_000))
    assert data.stat().st_size > 1024**2
    score(SCORER, data, tmp_path / "local.parquet", batch_size=512)
    summary = score(SCORER, data, tmp_path / "ray.parquet", batch_size=512, engine="ray", jobs=2)
    assert (summary.rows, summary.errors) == (20_000, 0)
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "local.parquet"))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_scoring_on_ray_writes_the_same_file(cluster: None, tmp_path: Path, suffix: str) -> None:
    data = write(tmp_path / f"in{suffix}", ROWS)
    score(SCORER, data, tmp_path / "local.parquet", batch_size=8)
    summary = score(SCORER, data, tmp_path / "ray.parquet", batch_size=8, engine="ray", jobs=2)
    assert (summary.rows, summary.errors) == (len(ROWS), 3)
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "local.parquet"))


def test_each_actor_loads_the_model_once(cluster: None, tmp_path: Path) -> None:
    project, loads = counting(tmp_path, preload=True)
    data = write(tmp_path / "in.jsonl", ROWS)
    summary = score(project, data, tmp_path / "ray.parquet", batch_size=2, engine="ray", jobs=2)
    assert summary.rows == len(ROWS)  # 25 batches
    pids = loads.read_text().split()
    # One load per actor (at most `jobs` of them), in the actors, never per batch or in the driver.
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids) and str(os.getpid()) not in pids


def logged(path: Path, n: int = 3000) -> Path:
    """A prediction log as Parquet: the router's requests and outputs, some in mode shadow."""
    rng = random.Random(3)
    intents = ["card_arrival", "lost_or_stolen_card", "balance", "gibberish", "refund"]
    rows = []
    for i in range(n):
        intent, p = rng.choice(intents), round(rng.random(), 3)
        rows.append(
            {
                "request_id": f"r{i:05d}",
                "ts": 1_700_000_000 + i // 3,  # ties on ts: the request id breaks them
                "service": "router",
                "inputs": orjson.dumps({"text": f"{intent} {p}", "customer_id": f"c{i % 17}"}).decode(),
                "outputs": orjson.dumps({"intent": intent, "probability": p}).decode(),
                "decision": '{"mode":"shadow","answer":"default"}' if i % 97 == 0 else None,
            }
        )
    rng.shuffle(rows)  # the merge, not the order of the file, decides which examples are kept
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=500)
    return path


def backtest_job() -> BacktestJob:
    pipeline = load_pipeline(ROUTER, rules=False)
    proposed = (
        "version: routing-2\ndefault: {queue: general, answer: {intent: unknown, probability: 0.0}}\n"
        "rules:\n  - name: urgent\n    when: output.intent == 'card_arrival' or output.probability > 0.9\n"
        "    then: {queue: urgent}\n  - name: unsure\n    when: output.probability < 0.3\n"
        "    then: {review: true, reason: unsure}\n"
    )
    return BacktestJob(
        (proposed, "proposed.yaml"),
        ((ROUTER / "rules.yaml").read_text(), "rules.yaml"),
        pipeline.input_schema.json_schema(),
        pipeline.output_schema.json_schema(),
        examples=2,
    )


def test_a_backtest_answers_the_same_on_every_engine_and_split(cluster: None, tmp_path: Path) -> None:
    source = Source.open(logged(tmp_path / "log.parquet"))
    job = backtest_job()
    whole = merged(run(job, source, batch_size=10_000)).to_dict()
    assert whole["total"] + whole["skipped"] == 3000 and whole["skipped"] == 31 and whole["changed"] > 0
    assert merged(run(job, source, batch_size=101)).to_dict() == whole
    assert merged(run(job, source, batch_size=333, jobs=2)).to_dict() == whole
    for blocks in (1, 7):
        on_ray = merged(run(job, source, engine="ray", jobs=2, batch_size=250, blocks=blocks))
        assert on_ray.to_dict() == whole


def test_cli_backtests_the_export_and_its_tail_on_every_engine(cluster: None, tmp_path: Path) -> None:
    project = tmp_path / "router"
    shutil.copytree(ROUTER, project)
    job = backtest_job()
    (project / "proposed.yaml").write_text(job.proposed[0])
    rows = pq.read_table(logged(tmp_path / "log.parquet", n=2000)).to_pylist()
    records = [
        PredictionRecord(
            r["request_id"],
            r["ts"],
            "router",
            "m-1",
            1.0,
            r["inputs"].encode(),
            r["outputs"].encode(),
            decision=r["decision"].encode() if r["decision"] else None,
        )
        for r in rows
    ]
    records.sort(key=lambda r: r.ts)
    with open_store("sqlite:///.shipway/shipway.db", project) as store:
        store.write_predictions(records[:1500])
    assert CliRunner().invoke(cli, ["export", str(project)]).exit_code == 0
    with open_store("sqlite:///.shipway/shipway.db", project) as store:  # logged after the export: its tail
        store.write_predictions(records[1500:])
    export = project / ".shipway" / "export"
    args = ["rules", "backtest", str(project / "proposed.yaml"), "--target", str(project), "--since", "2023-01-01"]
    reports = []
    for how in (
        [],
        ["--log", str(export)],
        ["--log", str(export), "--jobs", "2"],
        ["--log", str(export), "--engine", "ray"],
    ):
        result = CliRunner().invoke(cli, [*args, "--json", "--examples", "2", *how])
        assert result.exit_code == 0, result.output
        reports.append(orjson.loads(result.stdout))
    # Every report replays what the store holds: more than the export's 1,500 rows, with the 500 logged since.
    assert reports[0]["total"] > 1500 and all(r == reports[0] for r in reports)
    result = CliRunner().invoke(cli, [*args[:-1], "2024-01-01", "--log", str(export)])  # after every logged row
    assert result.exit_code == 0 and "no logged predictions in the window" in result.stdout, result.output


def drift_log(path: Path, n: int, seed: int) -> tuple[Path, list[dict[str, object]], list[dict[str, object]]]:
    inputs, outputs = items(n, seed=seed, shift=0.3)
    rows = [
        {
            "request_id": f"r{i:06d}",
            "ts": 1_700_000_000 + i,
            "inputs": orjson.dumps(item).decode(),
            "outputs": orjson.dumps(answer).decode(),
            "status": 200 if i % 50 else 500,
        }
        for i, (item, answer) in enumerate(zip(inputs, outputs, strict=True))
    ]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=1000)
    kept = [i for i, r in enumerate(rows) if r["status"] == 200]
    return path, [inputs[i] for i in kept], [outputs[i] for i in kept]


@pytest.mark.parametrize("n", [4_000, 14_000])  # below and above the values the summaries keep
def test_drift_from_merged_summaries_answers_the_same_on_every_engine(cluster: None, tmp_path: Path, n: int) -> None:
    reference_in, reference_out = items(3_000, seed=1)
    profile = Profile.build(reference_in, reference_out, kinds={"note": "text"})
    profile.save(tmp_path)
    log, inputs, outputs = drift_log(tmp_path / "log.parquet", n, seed=5)
    source = Source.open(log)
    job = DriftJob(str(tmp_path))

    # The domain classifier trains a model on the texts: slow, and it has no verdict from summaries.
    thresholds = Thresholds(features={"note": {"methods": ["text_length", "oov_rate"]}})

    def report(**how: object) -> dict[str, object]:
        summary = merged_summary(run(job, source, **how))  # type: ignore[arg-type]
        return compare_summary(profile, summary, thresholds).to_dict()

    whole = report(batch_size=100_000)
    assert whole["window"]["excluded"] == {"status other than 200": n // 50}
    assert report(batch_size=777) == whole
    for blocks in (1, 7) if n > KEEP_VALUES else (7,):
        assert report(engine="ray", jobs=2, batch_size=1500, blocks=blocks) == whole
    # The same verdicts as the window in memory, but Wasserstein and the text checks that read
    # every value, which summaries of more than 10,000 values do not keep.
    memory = compare(profile, Window.from_items(inputs, outputs, profile), thresholds).to_dict()
    for got, want in zip(whole["results"], memory["results"], strict=True):  # type: ignore[call-overload]
        if got["method"] in ("oov_rate", "domain_classifier") or (got["method"] == "wasserstein" and n > 10_000):
            assert got["value"] is None and "merged summaries" in got["note"]
        else:
            assert (got["method"], got["value"], got["p_value"]) == (want["method"], want["value"], want["p_value"])


def test_cli_drift_answers_the_same_from_the_store_and_on_every_engine(cluster: None, tmp_path: Path) -> None:
    project = tmp_path / "router"
    shutil.copytree(ROUTER, project)
    with (project / "shipway.toml").open("a") as fh:  # the text checks that read every text have no merged verdict
        fh.write('\n[monitoring.drift.features.text]\nmethods = ["text_length"]\n')
    rows = pq.read_table(logged(tmp_path / "log.parquet", n=2000)).to_pylist()
    reference = [orjson.loads(r["inputs"]) for r in rows[:1000]]
    answers = [{**orjson.loads(r["outputs"]), "probability": 0.5} for r in rows[:1000]]  # the answers drifted since
    Profile.build(reference, answers).save(project / "artifacts")
    records = [
        PredictionRecord(r["request_id"], r["ts"], "router", "m-1", 1.0, r["inputs"].encode(), r["outputs"].encode())
        for r in rows
    ]
    with open_store("sqlite:///.shipway/shipway.db", project) as store:
        store.write_predictions(sorted(records, key=lambda r: r.ts))
    assert CliRunner().invoke(cli, ["export", str(project)]).exit_code == 0
    args = ["monitor", "drift", str(project), "--since", "2023-01-01", "--json"]
    reports = []
    for how in (
        [],
        ["--jobs", "2"],
        ["--engine", "ray", "--jobs", "2"],
        ["--log", str(project / ".shipway" / "export")],
    ):
        result = CliRunner().invoke(cli, [*args, *how])
        assert result.exit_code == 0, result.output
        reports.append(orjson.loads(result.stdout))
    assert reports[0]["window"]["n_rows"] == 2000
    assert "output.probability" in reports[0]["summary"]["drifted_features"]
    assert all(r == reports[0] for r in reports[1:])
    shown = CliRunner().invoke(cli, args[:-1])
    assert shown.exit_code == 0 and "2,000 predictions compared with the reference" in shown.stdout
    assert "output.probability" in shown.stdout


def test_cli_drift_on_every_engine_reads_the_entries_logged_since_the_export(cluster: None, tmp_path: Path) -> None:
    project = tmp_path / "router"
    shutil.copytree(ROUTER, project)
    with (project / "shipway.toml").open("a") as fh:
        fh.write('\n[monitoring.drift.features.text]\nmethods = ["text_length"]\n')
    rows = sorted(pq.read_table(logged(tmp_path / "log.parquet", n=3000)).to_pylist(), key=lambda r: r["ts"])
    Profile.build(
        [orjson.loads(r["inputs"]) for r in rows[:1000]], [orjson.loads(r["outputs"]) for r in rows[:1000]]
    ).save(project / "artifacts")

    def records(part: list[dict[str, object]], drifted: bool) -> list[PredictionRecord]:
        out = []
        for r in part:
            answer = {**orjson.loads(r["outputs"]), "probability": 0.5} if drifted else orjson.loads(r["outputs"])  # type: ignore[arg-type]
            out.append(
                PredictionRecord(
                    r["request_id"],
                    r["ts"],
                    "router",
                    "m-1",
                    1.0,
                    r["inputs"].encode(),
                    orjson.dumps(answer),  # type: ignore[arg-type,union-attr]
                )
            )
        return out

    with open_store("sqlite:///.shipway/shipway.db", project) as store:
        store.write_predictions(records(rows[:2000], drifted=False))
    assert CliRunner().invoke(cli, ["export", str(project)]).exit_code == 0
    with open_store("sqlite:///.shipway/shipway.db", project) as store:  # logged after the export: its tail
        store.write_predictions(records(rows[2000:], drifted=True))
    export = project / ".shipway" / "export"
    exported = sum(pq.read_metadata(f).num_rows for f in (export / "predictions").rglob("*.parquet"))
    args = ["monitor", "drift", str(project), "--since", "2023-01-01", "--json"]
    reports = []
    for how in ([], ["--jobs", "2"], ["--engine", "ray", "--jobs", "2"], ["--engine", "ray", "--log", str(export)]):
        result = CliRunner().invoke(cli, [*args, *how])
        assert result.exit_code == 0, result.output
        reports.append(orjson.loads(result.stdout))
    # The export holds 2,000 rows; every report counts the 1,000 logged since, whose answers drifted.
    assert exported == 2000 and reports[0]["window"]["n_rows"] == 3000
    assert "output.probability" in reports[0]["summary"]["drifted_features"]
    assert all(r == reports[0] for r in reports[1:])
    # A window that starts after every exported row: the tail's rows alone, on Ray as here.
    start = int(rows[1999]["ts"]) + 1  # type: ignore[call-overload]
    late = [*args[:3], "--since", str(start), "--json"]
    alone = [orjson.loads(CliRunner().invoke(cli, [*late, *how]).stdout) for how in ([], ["--engine", "ray"])]
    assert alone[0]["window"]["n_rows"] == sum(r["ts"] >= start for r in rows) > 900  # type: ignore[operator]
    assert alone[1] == alone[0]


def test_cli_drift_says_what_is_missing(tmp_path: Path) -> None:
    project = tmp_path / "router"
    shutil.copytree(ROUTER, project)
    result = CliRunner().invoke(cli, ["monitor", "drift", str(project)])
    assert result.exit_code == 2 and "no reference profile" in result.output and "profile.json" in result.output
    Profile.build([{"text": "a b"}] * 40, [{"intent": "x", "probability": 0.5}] * 40).save(project / "artifacts")
    result = CliRunner().invoke(cli, ["monitor", "drift", str(project), "--engine", "ray"])
    assert result.exit_code == 2 and "run `shipway export` first" in result.output
