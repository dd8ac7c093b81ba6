"""Tables of the experiments (schema version 5): datasets, tasks, runs and what runs record.

Written once with two type words filled in per dialect, as `tables.py` does, so that
SQLite and PostgreSQL keep the same columns and `datasets.py` and `runs.py` run on both.
JSON documents are stored as text on both backends: they are written and read whole.
"""

from __future__ import annotations

__all__ = ["run_tables"]

_TABLES = (
    # One row per registered dataset version: `version` is the content version (the same rows
    # give the same version, whatever the file names or the machine).
    """CREATE TABLE datasets (
        name TEXT NOT NULL, version TEXT NOT NULL, created {real} NOT NULL,
        rows TEXT NOT NULL, schema TEXT NOT NULL, labels TEXT NOT NULL, files TEXT NOT NULL,
        target TEXT, code_commit TEXT, command TEXT, meta TEXT NOT NULL,
        PRIMARY KEY (name, version)
    )""",
    "CREATE INDEX datasets_version ON datasets (version)",
    # A task: a dataset version plus its target, splits and metric, so runs on it compare.
    """CREATE TABLE tasks (
        name TEXT PRIMARY KEY, dataset TEXT NOT NULL, dataset_version TEXT NOT NULL,
        target TEXT NOT NULL, splits TEXT NOT NULL, metric TEXT NOT NULL, created {real} NOT NULL
    )""",
    # One row per run, small, so that listing thousands of runs reads few pages: `metrics` holds
    # each metric's last value; the bulky documents (the code's diff, the package list) are
    # in run_code. The other documents (configuration, seeds, tags) are JSON text.
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY, project TEXT NOT NULL, name TEXT, status TEXT NOT NULL,
        started {real} NOT NULL, ended {real}, task TEXT, dataset_version TEXT, recipe TEXT,
        code_commit TEXT, dirty INTEGER, config TEXT NOT NULL, overrides TEXT NOT NULL,
        seeds TEXT NOT NULL, tags TEXT NOT NULL, error TEXT, command TEXT, model_version TEXT,
        parent TEXT, metrics TEXT NOT NULL
    )""",
    "CREATE TABLE run_code (run_id TEXT PRIMARY KEY, code TEXT NOT NULL, environment TEXT NOT NULL)",
    "CREATE INDEX runs_project ON runs (project, started)",
    "CREATE INDEX runs_started ON runs (started)",
    """CREATE TABLE run_params (
        run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key)
    )""",
    # Every logged value is kept (a metric logged per epoch has one row per step).
    """CREATE TABLE run_metrics (
        id {serial}, run_id TEXT NOT NULL, key TEXT NOT NULL, value {real} NOT NULL,
        step BIGINT NOT NULL, ts {real} NOT NULL
    )""",
    "CREATE INDEX run_metrics_run ON run_metrics (run_id, key, step)",
    # Files by digest: the bytes live in the artifact folder (store/objects.py).
    """CREATE TABLE run_artifacts (
        run_id TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL, size BIGINT NOT NULL,
        PRIMARY KEY (run_id, name)
    )""",
)


def run_tables(*, real: str, serial: str) -> tuple[str, ...]:
    """The version-5 statements for one dialect: its float type and its id column."""
    return tuple(t.format(real=real, serial=serial) for t in _TABLES)
