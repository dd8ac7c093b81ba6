"""Registered dataset versions and tasks (schema version 5).

A dataset version is registered once and never changes: registering the same content
again returns the first record. A task names a dataset version with its target, splits
and metric, so that every run on it is comparable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson

from shipway.errors import StoreError

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = ["DatasetRecord", "DatasetRecords", "TaskRecord"]

_DATASET_COLUMNS = (
    "name",
    "version",
    "created",
    "rows",
    "schema",
    "labels",
    "files",
    "target",
    "code_commit",
    "command",
    "meta",
)
_DATASET_DOCUMENTS = frozenset({"rows", "schema", "labels", "files", "meta"})
_TASK_COLUMNS = ("name", "dataset", "dataset_version", "target", "splits", "metric", "created")


@dataclass
class DatasetRecord:
    """One dataset version: rows per split, schema (field -> type name), label counts per
    split, files (relative path -> {"digest", "size"}), and how it was built."""

    name: str
    version: str
    created: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    schema: dict[str, str] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    target: str | None = None
    code_commit: str | None = None
    command: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskRecord:
    """A dataset version plus its target, splits (role -> split name) and metric."""

    name: str
    dataset: str
    dataset_version: str
    target: str
    splits: dict[str, str]
    metric: str
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _dataset(row: Sequence[Any]) -> DatasetRecord:
    values = dict(zip(_DATASET_COLUMNS, row, strict=True))
    for column in _DATASET_DOCUMENTS:
        values[column] = orjson.loads(values[column])
    values["created"] = float(values["created"])
    return DatasetRecord(**values)


def _task(row: Sequence[Any]) -> TaskRecord:
    values = dict(zip(_TASK_COLUMNS, row, strict=True))
    values["splits"] = orjson.loads(values["splits"])
    values["created"] = float(values["created"])
    return TaskRecord(**values)


class DatasetRecords:
    """The dataset and task methods of a `Store` (mixed into it; SQL for both backends)."""

    def _store(self) -> Store:
        return cast("Store", self)

    def register_dataset(self, dataset: DatasetRecord) -> DatasetRecord:
        """Register a dataset version; if that name and version exist, the stored record."""
        if not dataset.created:
            dataset.created = time.time()
        values = tuple(
            _dumps(getattr(dataset, c)) if c in _DATASET_DOCUMENTS else getattr(dataset, c) for c in _DATASET_COLUMNS
        )
        marks = ", ".join("?" * len(_DATASET_COLUMNS))
        sql = (
            f"INSERT INTO datasets ({', '.join(_DATASET_COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (name, version) DO NOTHING"
        )
        self._store()._transact(lambda run_sql: run_sql(sql, values))
        return self.get_dataset(dataset.version, name=dataset.name)

    def get_dataset(self, version: str, *, name: str | None = None) -> DatasetRecord:
        """The dataset with this version (or unique version prefix); StoreError if none or several."""
        store = self._store()
        ph = store.placeholder
        cols = ", ".join(_DATASET_COLUMNS)
        where, params = f"version = {ph}", [version]
        if name is not None:
            where += f" AND name = {ph}"
            params.append(name)
        rows = store._query(f"SELECT {cols} FROM datasets WHERE {where}", params)
        if not rows and version and not set(version) & {"%", "_", "\\"}:
            params[0] = version + "%"
            rows = store._query(
                f"SELECT {cols} FROM datasets WHERE {where.replace('version =', 'version LIKE')}", params
            )
        if not rows:
            which = f"{name!r} " if name else ""
            raise StoreError(
                f"no dataset {which}version {version!r} in the store {store.url}; "
                "list the versions with `shipway data list`, or build one with `shipway data build`"
            )
        if len({r[1] for r in rows}) > 1 or (name is None and len(rows) > 1):
            found = ", ".join(sorted(f"{r[0]}@{r[1]}" for r in rows))
            raise StoreError(f"the dataset version {version!r} matches several datasets ({found}); be more precise")
        return _dataset(rows[0])

    def list_datasets(self, name: str | None = None, limit: int | None = None) -> list[DatasetRecord]:
        """Dataset versions newest first, for one name or all."""
        store = self._store()
        sql = f"SELECT {', '.join(_DATASET_COLUMNS)} FROM datasets"
        params: list[Any] = []
        if name is not None:
            sql += f" WHERE name = {store.placeholder}"
            params.append(name)
        sql += " ORDER BY created DESC, version"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_dataset(r) for r in store._query(sql, params)]

    def define_task(self, task: TaskRecord) -> TaskRecord:
        """Register a task; the same definition again returns it, a different one under a
        taken name is refused (a task never changes, so runs on it stay comparable)."""
        existing = self.find_task(task.name)
        if existing is not None:
            same = (existing.dataset_version, existing.target, existing.splits, existing.metric) == (
                task.dataset_version,
                task.target,
                task.splits,
                task.metric,
            )
            if not same:
                raise StoreError(
                    f"the task {task.name!r} is already defined as {existing.to_dict()}; a task never "
                    "changes, so runs on it stay comparable: give the new definition another name"
                )
            return existing
        if not task.created:
            task.created = time.time()
        values = tuple(_dumps(task.splits) if c == "splits" else getattr(task, c) for c in _TASK_COLUMNS)
        marks = ", ".join("?" * len(_TASK_COLUMNS))
        sql = f"INSERT INTO tasks ({', '.join(_TASK_COLUMNS)}) VALUES ({marks}) ON CONFLICT (name) DO NOTHING"
        self._store()._transact(lambda run_sql: run_sql(sql, values))
        return self.find_task(task.name) or task

    def find_task(self, name: str) -> TaskRecord | None:
        """The task of that name, or None."""
        store = self._store()
        rows = store._query(f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks WHERE name = {store.placeholder}", [name])
        return _task(rows[0]) if rows else None

    def list_tasks(self) -> list[TaskRecord]:
        """Every task, newest first."""
        rows = self._store()._query(f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks ORDER BY created DESC, name", [])
        return [_task(r) for r in rows]
