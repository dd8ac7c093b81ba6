"""Runs, datasets and tasks in the store: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shipway.errors import StoreError
from shipway.store import open_store
from shipway.store.datasets import DatasetRecord, TaskRecord
from shipway.store.objects import ObjectStore, hash_file
from shipway.store.runs import ArtifactRef, RunRecord

pytest_plugins = ["store_fixtures"]


def _run(run_id: str, started: float = 1.0, **fields: object) -> RunRecord:
    return RunRecord(id=run_id, project="p", started=started, code={"diff": "x"}, environment={"python": "3"}, **fields)  # type: ignore[arg-type]


def test_a_run_records_params_metrics_artifacts_and_ends(store_url: str) -> None:
    with open_store(store_url) as store:
        store.insert_run(_run("a1b2", config={"C": 1.0}, seeds={"seed": 3}))
        store.record_run(
            "a1b2", params={"C": 1.0, "ngrams": [1, 2]}, metrics=[("loss", 0.5, 0, 1.0), ("loss", 0.25, 1, 2.0)]
        )
        store.record_run(
            "a1b2",
            params={"C": 2.0},
            metrics=[("valid_accuracy", 0.9, 0, 3.0)],
            artifacts={"model.joblib": ArtifactRef("ab" * 32, 10)},
            fields={"status": "finished", "ended": 11.0, "tags": {"a": "1"}},
        )
        store.record_run("a1b2", fields={"tags": {"b": "2"}})
        run = store.get_run("a1b")  # a unique prefix is enough
        stored = (run.status, run.duration_s)  # the values written above, read back
        assert stored == ("finished", 10.0)
        assert run.params == {"C": 2.0, "ngrams": [1, 2]}
        assert run.metrics == {"loss": 0.25, "valid_accuracy": 0.9}
        assert run.artifacts == {"model.joblib": ArtifactRef("ab" * 32, 10)}
        assert run.tags == {"a": "1", "b": "2"}
        assert run.config == {"C": 1.0} and run.seeds == {"seed": 3} and run.code == {"diff": "x"}
        assert [(p.step, p.value) for p in store.metric_history(run.id, "loss")] == [(0, 0.5), (1, 0.25)]


def test_runs_are_listed_newest_first_without_their_bulky_documents(store_url: str) -> None:
    with open_store(store_url) as store:
        for i in range(3):
            store.insert_run(_run(f"run{i}", started=float(i), task="t" if i else None))
        store.record_run("run1", metrics=[("acc", 0.5, 0, 1.0)])
        listed = store.list_runs()
        assert [r.id for r in listed] == ["run2", "run1", "run0"]
        assert listed[1].metrics == {"acc": 0.5} and listed[1].code == {} and listed[1].environment == {}
        assert [r.id for r in store.list_runs(task="t", limit=1)] == ["run2"]
        # The small documents come back as written (the database joins them into one array).
        documents = {
            "config": {"text": 'a "quoted", [bracketed] £ value', "nested": {"n": [1, 2.5, None]}},
            "overrides": {"C": "5"},
            "seeds": {"seed": 7},
            "tags": {"note": "]},{"},
        }
        store.insert_run(_run("run3", started=9.0, **documents))
        store.record_run("run3", metrics=[("acc", 0.25, 0, 1.0)])
        found = store.list_runs(limit=1)[0]
        assert {k: getattr(found, k) for k in documents} == documents and found.metrics == {"acc": 0.25}


def test_unknown_runs_and_fields_are_clear_errors(store_url: str) -> None:
    with open_store(store_url) as store:
        store.insert_run(_run("abc1"))
        store.insert_run(_run("abc2"))
        with pytest.raises(StoreError, match=r"no run 'zzz'.*shipway runs list"):
            store.get_run("zzz")
        with pytest.raises(StoreError, match="matches several runs"):
            store.get_run("abc")
        with pytest.raises(StoreError, match="no run 'nope'"):
            store.record_run("nope", params={"a": 1})
        with pytest.raises(StoreError, match=r"unknown run field\(s\) \['colour'\]"):
            store.record_run("abc1", fields={"colour": "red"})


def test_datasets_register_once_and_tasks_never_change(store_url: str) -> None:
    dataset = DatasetRecord("bank", "v" * 16, rows={"train": 2}, schema={"text": "str"}, labels={"train": {"a": 2}})
    with open_store(store_url) as store:
        first = store.register_dataset(dataset)
        again = store.register_dataset(DatasetRecord("bank", "v" * 16, rows={"train": 99}))
        assert again == first and first.rows == {"train": 2}
        assert store.get_dataset("vvvv").version == "v" * 16
        assert [d.version for d in store.list_datasets("bank")] == ["v" * 16]
        with pytest.raises(StoreError, match=r"no dataset version 'w'.*shipway data build"):
            store.get_dataset("w")
        task = TaskRecord("intent", "bank", "v" * 16, "category", {"train": "train", "test": "test"}, "accuracy")
        assert store.define_task(task).metric == "accuracy"
        assert store.define_task(task).name == "intent"
        with pytest.raises(StoreError, match="already defined"):
            store.define_task(TaskRecord("intent", "bank", "v" * 16, "category", {"train": "train"}, "f1"))
        assert [t.name for t in store.list_tasks()] == ["intent"]


def test_a_version_5_sqlite_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with open_store(f"sqlite:///{path}"):
        pass
    conn = sqlite3.connect(path)
    # Back to version 5: the run tables (6), the outcome rollups (7), the registry (8), the
    # model candidates (10) and the annotations (12) go,
    tables = ("run_artifacts", "run_metrics", "run_params", "run_code", "runs", "tasks", "datasets")
    registry = ("model_candidates", "model_alias_history", "model_aliases", "model_versions")
    for table in (*registry, *tables, "feedback_scores", "feedback_ranks", "annotations"):
        conn.execute(f"DROP TABLE {table}")
    # and the log's mode column (9), with the view that shows it.
    conn.execute("DROP VIEW predictions")
    conn.execute("ALTER TABLE contexts DROP COLUMN mode")
    conn.execute("CREATE VIEW predictions AS SELECT 1 AS id")
    conn.execute("DELETE FROM schema_version WHERE version >= 6")
    conn.commit()
    conn.close()
    with open_store(f"sqlite:///{path}") as store:
        store.insert_run(_run("r"))
        assert store.get_run("r").project == "p"


def test_the_artifact_folder_stores_bytes_once_by_digest(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights" * 1000)
    digest, size = objects.put(source)
    assert digest == hash_file(source) and size == 7000
    assert objects.path(digest) == tmp_path / "objects" / digest[:2] / digest
    assert objects.put(source, link=True) == (digest, size)
    assert objects.get_bytes(digest) == source.read_bytes()
    with pytest.raises(StoreError, match="bad artifact digest 'xyz'"):
        objects.path("xyz")
    with pytest.raises(StoreError, match="not a file"):
        objects.put(tmp_path)
