"""The Ray engine answers exactly as the local one: scoring, a rules backtest, drift summaries.

One local Ray cluster for the module, with its object store capped (Ray otherwise sizes it
from the machine's memory) and two CPUs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_scoring import ROWS, SCORER, write

from shipway.engine import Source, run
from shipway.experiments.backtest import BacktestJob, merged
from shipway.rules.pipeline import load_pipeline
from shipway.scoring import score

ray = pytest.importorskip("ray", reason="the Ray engine needs pip install 'shipway[ray]' (in dev)")

ROUTER = Path(__file__).resolve().parent / "services" / "router"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_scoring_on_ray_writes_the_same_file(cluster: None, tmp_path: Path, suffix: str) -> None:
    data = write(tmp_path / f"in{suffix}", ROWS)
    score(SCORER, data, tmp_path / "local.parquet", batch_size=8)
    summary = score(SCORER, data, tmp_path / "ray.parquet", batch_size=8, engine="ray", jobs=2)
    assert (summary.rows, summary.errors) == (len(ROWS), 3)
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "local.parquet"))


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


def test_cli_backtests_an_exported_log(tmp_path: Path) -> None:
    import shutil

    from click.testing import CliRunner

    from shipway.cli.main import main as cli

    project = tmp_path / "router"
    shutil.copytree(ROUTER, project)
    job = backtest_job()
    (project / "proposed.yaml").write_text(job.proposed[0])
    log = logged(tmp_path / "log.parquet")
    args = ["rules", "backtest", str(project / "proposed.yaml"), "--target", str(project), "--log", str(log)]
    result = CliRunner().invoke(cli, [*args, "--since", "2023-01-01", "--examples", "2", "--json", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report == merged(run(job, Source.open(log), batch_size=1000)).to_dict()
    result = CliRunner().invoke(cli, [*args, "--since", "2024-01-01"])  # after every logged row
    assert result.exit_code == 0 and "no logged predictions in the window" in result.stdout
