"""The model registry's tables (schema version 6): immutable model versions, aliases, and the
history of every alias move with who and when.

A model version is named by the digest of its artifact files, so the same bytes registered
twice are one version. An alias (`champion`, `challenger`, any name) points at one version
and moves with `set_alias`; each move is a row of `model_alias_history`, never rewritten.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson

from shipway.errors import RegistryError

if TYPE_CHECKING:
    from shipway.store.base import Store

__all__ = ["AliasMove", "ModelVersion", "RegistryRecords", "registry_tables"]

_TABLES = (
    """CREATE TABLE model_versions (
        version TEXT PRIMARY KEY, digest TEXT NOT NULL, run_id TEXT, recipe TEXT, task TEXT,
        dataset_version TEXT, code_commit TEXT, dirty INTEGER, created {real} NOT NULL,
        created_by TEXT NOT NULL, files TEXT NOT NULL, metrics TEXT NOT NULL
    )""",
    "CREATE INDEX model_versions_run ON model_versions (run_id)",
    """CREATE TABLE model_aliases (
        alias TEXT PRIMARY KEY, version TEXT NOT NULL, moved {real} NOT NULL, moved_by TEXT NOT NULL
    )""",
    """CREATE TABLE model_alias_history (
        id {serial}, alias TEXT NOT NULL, version TEXT NOT NULL, previous TEXT,
        ts {real} NOT NULL, who TEXT NOT NULL, note TEXT
    )""",
    "CREATE INDEX model_alias_history_alias ON model_alias_history (alias, ts)",
)

_VERSION_COLUMNS = (
    "version",
    "digest",
    "run_id",
    "recipe",
    "task",
    "dataset_version",
    "code_commit",
    "dirty",
    "created",
    "created_by",
    "files",
    "metrics",
)


def registry_tables(*, real: str, serial: str) -> tuple[str, ...]:
    """The version-6 statements for one dialect."""
    return tuple(t.format(real=real, serial=serial) for t in _TABLES)


@dataclass
class ModelVersion:
    """An immutable model version: its files (name to {digest, size}) and where it came from."""

    version: str
    digest: str
    run_id: str | None = None
    recipe: str | None = None
    task: str | None = None
    dataset_version: str | None = None
    code_commit: str | None = None
    dirty: bool | None = None
    created: float = 0.0
    created_by: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AliasMove:
    """One move of an alias: to `version`, from `previous` (None when the alias was new)."""

    alias: str
    version: str
    previous: str | None
    ts: float
    who: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(row: Sequence[Any]) -> ModelVersion:
    values = dict(zip(_VERSION_COLUMNS, row, strict=True))
    values["files"] = orjson.loads(values["files"])
    values["metrics"] = orjson.loads(values["metrics"])
    values["dirty"] = None if values["dirty"] is None else bool(values["dirty"])
    return ModelVersion(**values)


class RegistryRecords:
    """Registry reads and writes, mixed into Store (both backends)."""

    def _store(self) -> Store:
        return cast("Store", self)

    def register_model_version(self, record: ModelVersion) -> ModelVersion:
        """Insert the version; the same version again returns the stored one unchanged."""
        if not record.created:
            record.created = time.time()
        values = [getattr(record, c) for c in _VERSION_COLUMNS]
        values[_VERSION_COLUMNS.index("files")] = orjson.dumps(record.files).decode()
        values[_VERSION_COLUMNS.index("metrics")] = orjson.dumps(record.metrics).decode()
        dirty = record.dirty
        values[_VERSION_COLUMNS.index("dirty")] = None if dirty is None else int(dirty)
        marks = ", ".join("?" * len(_VERSION_COLUMNS))
        sql = (
            f"INSERT INTO model_versions ({', '.join(_VERSION_COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (version) DO NOTHING"
        )
        self._store()._transact(lambda run_sql: run_sql(sql, values))
        return self.get_model_version(record.version)

    def get_model_version(self, version: str) -> ModelVersion:
        """The version with this name or unique name prefix; RegistryError if none or several."""
        store = self._store()
        cols = ", ".join(_VERSION_COLUMNS)
        rows = store._query(f"SELECT {cols} FROM model_versions WHERE version = {store.placeholder}", [version])
        if not rows and version and not set(version) & {"%", "_", "\\"}:
            rows = store._query(
                f"SELECT {cols} FROM model_versions WHERE version LIKE {store.placeholder}", [version + "%"]
            )
        if len(rows) != 1:
            problem = "no model version" if not rows else "several model versions match"
            raise RegistryError(
                f"{problem} {version!r} in the store {store.url}; list them with `shipway models list`, "
                "or register a run's model with `shipway models register RUN`."
            )
        return _version(rows[0])

    def list_model_versions(self, limit: int | None = None) -> list[ModelVersion]:
        """Versions, newest first."""
        sql = f"SELECT {', '.join(_VERSION_COLUMNS)} FROM model_versions ORDER BY created DESC, version"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_version(r) for r in self._store()._query(sql, [])]

    def set_alias(self, alias: str, version: str, who: str, note: str | None = None) -> AliasMove:
        """Point `alias` at `version` (which must be registered) and record the move."""
        self.get_model_version(version)  # exists, exactly
        now = time.time()
        moved: list[str | None] = []

        def work(run_sql: Any) -> None:
            rows = run_sql("SELECT version FROM model_aliases WHERE alias = ?", (alias,))
            moved.append(rows[0][0] if rows else None)
            run_sql(
                "INSERT INTO model_aliases (alias, version, moved, moved_by) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (alias) DO UPDATE SET version = excluded.version, moved = excluded.moved, "
                "moved_by = excluded.moved_by",
                (alias, version, now, who),
            )
            run_sql(
                "INSERT INTO model_alias_history (alias, version, previous, ts, who, note) VALUES (?, ?, ?, ?, ?, ?)",
                (alias, version, moved[0], now, who, note),
            )

        self._store()._transact(work)
        return AliasMove(alias, version, moved[0], now, who, note)

    def get_alias(self, alias: str) -> str | None:
        """The version `alias` points at, or None."""
        store = self._store()
        rows = store._query(f"SELECT version FROM model_aliases WHERE alias = {store.placeholder}", [alias])
        return str(rows[0][0]) if rows else None

    def list_aliases(self) -> dict[str, str]:
        """Every alias and its version."""
        return {str(a): str(v) for a, v in self._store()._query("SELECT alias, version FROM model_aliases", [])}

    def alias_history(self, alias: str | None = None, version: str | None = None) -> list[AliasMove]:
        """Alias moves, newest first: of one alias, to one version, or all."""
        store = self._store()
        sql = "SELECT alias, version, previous, ts, who, note FROM model_alias_history"
        conditions, params = [], []
        if alias is not None:
            conditions.append(f"alias = {store.placeholder}")
            params.append(alias)
        if version is not None:
            conditions.append(f"version = {store.placeholder}")
            params.append(version)
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        rows = store._query(sql + " ORDER BY ts DESC, id DESC", params)
        return [AliasMove(str(r[0]), str(r[1]), r[2], float(r[3]), str(r[4]), r[5]) for r in rows]
