"""The run-tracking API: what training code logs reaches the store, whatever way the code ends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import shipway
from shipway.errors import ConfigError
from shipway.experiments.config import apply_overrides
from shipway.store import open_store


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "shipway.toml").write_text('name = "demo"\n')
    return tmp_path


def stored(project: Path, run_id: str) -> shipway.Run:
    with open_store("sqlite:///.shipway/shipway.db", project) as store:
        return store.get_run(run_id)  # type: ignore[return-value]


def test_a_run_records_what_the_code_logs(project: Path) -> None:
    (project / "model.bin").write_bytes(b"\x00" * 100)
    with shipway.run(project, name="try-1", tags={"who": "me"}) as run:
        config = run.configure({"classifier": {"C": 20.0}, "ngrams": [1, 2]})
        seed = run.seed(7)
        for epoch in range(3):
            run.log_metric("loss", 1.0 / (epoch + 1))
        run.log_metrics({"valid_accuracy": 0.9, "test_accuracy": 0.8})
        digest = run.log_artifact(project / "model.bin")
        assert shipway.active_run() is run
    assert shipway.active_run() is None
    assert config == {"classifier": {"C": 20.0}, "ngrams": [1, 2]} and seed == 7
    record = stored(project, run.id)
    assert record.status == "finished" and record.name == "try-1" and record.project == "demo"
    assert record.params == {"classifier.C": 20.0, "ngrams": [1, 2]}
    assert record.metrics == {"loss": pytest.approx(1 / 3), "valid_accuracy": 0.9, "test_accuracy": 0.8}
    assert record.artifacts["model.bin"].digest == digest and record.artifacts["model.bin"].size == 100
    assert record.seeds == {"seed": 7} and record.tags == {"who": "me"}
    assert record.environment["packages"]["orjson"] and record.environment["python"]
    assert record.code["commit"] is None and "not in a git repository" in record.code["note"]


def test_a_failing_block_records_a_failed_run_with_its_error(project: Path) -> None:
    with pytest.raises(ZeroDivisionError), shipway.run(project) as run:
        run.log_metric("loss", 0.5)
        _ = 1 / 0
    record = stored(project, run.id)
    assert record.status == "failed" and "ZeroDivisionError" in (record.error or "")
    assert record.metrics == {"loss": 0.5}


@pytest.mark.parametrize(
    ("ending", "status"),
    [("raise RuntimeError('boom')", "failed"), ("pass", "finished")],
)
def test_a_script_that_never_ends_its_run_loses_nothing(project: Path, ending: str, status: str) -> None:
    script = project / "train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import shipway
            run = shipway.start_run()
            print(run.id, flush=True)
            for i in range(100):
                run.log_metric(f"m{{i}}", i)
            {ending}
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], cwd=project, capture_output=True, text=True, timeout=120)
    record = stored(project, done.stdout.split()[0])
    assert record.status == status
    assert len(record.metrics) == 100
    if status == "failed":
        assert "RuntimeError: boom" in (record.error or "")


def test_overrides_are_typed_by_their_defaults_and_unknown_keys_are_named() -> None:
    defaults = {"classifier": {"C": 20.0, "max_iter": 1000}, "words": {"ngram_range": [1, 2], "lower": True}}
    resolved = apply_overrides(defaults, {"classifier.C": "5", "words.ngram_range": "[1, 3]", "words.lower": "false"})
    assert resolved["classifier"] == {"C": 5.0, "max_iter": 1000}
    assert resolved["words"] == {"ngram_range": [1, 3], "lower": False}
    assert defaults["classifier"]["C"] == 20.0
    with pytest.raises(ConfigError, match=r"no key 'classifier\.c'.*classifier\.C, classifier\.max_iter"):
        apply_overrides(defaults, {"classifier.c": "5"})
    with pytest.raises(ConfigError, match="expected a int like the default 1000, got float"):
        apply_overrides(defaults, {"classifier.max_iter": "1.5"})


def test_bad_metric_values_are_refused_with_the_key(project: Path) -> None:
    with shipway.run(project) as run, pytest.raises(ConfigError, match="metric 'acc' must be a number, got 'high'"):
        run.log_metric("acc", "high")  # type: ignore[arg-type]
