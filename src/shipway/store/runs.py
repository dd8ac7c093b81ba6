"""Tracked runs: one row per run, with its parameters, metrics and artifacts (schema version 5).

A run's parameters, metrics and artifacts arrive in batches (`record_run`), each batch one
transaction: the tracking API buffers what training code logs and writes it at intervals,
so logging a metric costs microseconds, not a transaction (docs/experiments.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson

from shipway.errors import StoreError

if TYPE_CHECKING:
    from shipway.store.base import Executor, Store

__all__ = ["RUN_STATUSES", "ArtifactRef", "MetricPoint", "RunRecord", "RunRecords"]

RUN_STATUSES = ("running", "finished", "failed")

# The columns of `runs` in the order of RunRecord's fields; the code and environment
# documents live in `run_code`, so that listing runs never reads them.
_COLUMNS = (
    "id",
    "project",
    "name",
    "status",
    "started",
    "ended",
    "task",
    "dataset_version",
    "recipe",
    "code_commit",
    "dirty",
    "config",
    "overrides",
    "seeds",
    "tags",
    "error",
    "command",
    "model_version",
    "parent",
)
_BULKY = ("code", "environment")
_FIELDS = (*_COLUMNS, *_BULKY)
_DOCUMENTS = frozenset({"config", "overrides", "seeds", "tags", *_BULKY})
_LISTED_DOCUMENTS = ("config", "overrides", "seeds", "tags", "metrics")
# The plain columns, then the run's small JSON documents as one JSON array that the database
# builds, so that a row costs one JSON parse, not five (listing 10,000 runs: docs/benchmarks.md).
_ARRAY = "'[' || " + " || ',' || ".join(_LISTED_DOCUMENTS) + " || ']'"
_SELECT = f"SELECT {', '.join(c for c in _COLUMNS if c not in _DOCUMENTS)}, {_ARRAY} FROM runs"


@dataclass
class ArtifactRef:
    """A file a run recorded: its bytes are in the artifact folder under `digest`."""

    digest: str
    size: int


@dataclass
class MetricPoint:
    """One logged value of a metric."""

    value: float
    step: int
    ts: float


@dataclass
class RunRecord:
    """A run as the store keeps it. `metrics` holds each metric's last logged value."""

    id: str
    project: str
    status: str = "running"
    started: float = 0.0
    ended: float | None = None
    name: str | None = None
    task: str | None = None
    dataset_version: str | None = None
    recipe: str | None = None
    code_commit: str | None = None
    dirty: bool | None = None
    code: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    command: str | None = None
    model_version: str | None = None
    parent: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, ArtifactRef] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end; None while the run is running."""
        return None if self.ended is None else self.ended - self.started

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data (`shipway runs show --json`)."""
        out = {c: getattr(self, c) for c in _FIELDS}
        out["duration_s"] = self.duration_s
        out["params"] = self.params
        out["metrics"] = self.metrics
        out["artifacts"] = {k: {"digest": a.digest, "size": a.size} for k, a in self.artifacts.items()}
        return out


def _row_values(run: RunRecord) -> tuple[Any, ...]:
    values: list[Any] = []
    for column in _COLUMNS:
        value = getattr(run, column)
        if column in _DOCUMENTS:
            value = _dumps(value)
        elif column == "dirty" and value is not None:
            value = int(value)
        values.append(value)
    return tuple(values)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _loads(value: Any) -> Any:
    return {} if value is None or value == "{}" else orjson.loads(value)


def _from_row(row: Sequence[Any]) -> RunRecord:
    """A run from a row of `_SELECT` (its plain columns, then its documents as one array)."""
    (rid, project, name, status, started, ended, task, dataset, recipe, commit, dirty) = row[:11]
    config, overrides, seeds, tags, metrics = orjson.loads(row[15])
    return RunRecord(
        rid,
        project,
        status,
        started,
        ended,
        name,
        task,
        dataset,
        recipe,
        commit,
        None if dirty is None else bool(dirty),
        config=config,
        overrides=overrides,
        seeds=seeds,
        tags=tags,
        error=row[11],
        command=row[12],
        model_version=row[13],
        parent=row[14],
        metrics=metrics,
    )


class RunRecords:
    """The run methods of a `Store` (mixed into it; SQL for both backends)."""

    def _store(self) -> Store:
        return cast("Store", self)

    def insert_run(self, run: RunRecord) -> None:
        """Add a new run; StoreError if its id is taken."""
        marks = ", ".join("?" * (len(_COLUMNS) + 1))
        sql = f"INSERT INTO runs ({', '.join(_COLUMNS)}, metrics) VALUES ({marks})"

        def work(run_sql: Executor) -> None:
            run_sql(sql, (*_row_values(run), _dumps(run.metrics)))
            run_sql(
                "INSERT INTO run_code (run_id, code, environment) VALUES (?, ?, ?)",
                (run.id, _dumps(run.code), _dumps(run.environment)),
            )

        self._store()._transact(work)

    def record_run(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[tuple[str, float, int, float]] = (),
        artifacts: Mapping[str, ArtifactRef] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Add parameters, metric values `(key, value, step, ts)`, artifacts and changed run
        fields (`status`, `ended`, `tags`...) to a run, in one transaction.

        Parameters and artifacts replace those of the same name; tags merge into the run's.
        """
        changes = dict(fields or {})
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise StoreError(f"unknown run field(s) {unknown}; the fields are {', '.join(_FIELDS)}")
        bulky = {k: _dumps(changes.pop(k)) for k in _BULKY if k in changes}

        def work(run_sql: Executor) -> None:
            # The first statement takes the run's row lock (PostgreSQL) so that two writers
            # of one run (the CLI and the training code it started) merge, not overwrite.
            found = run_sql("UPDATE runs SET id = id WHERE id = ? RETURNING metrics, tags", (run_id,))
            if not found:
                raise StoreError(f"no run {run_id!r} in the store; start it with start_run() first")
            summary: dict[str, float] = _loads(found[0][0]) or {}
            for key, value, _, _ in metrics:
                summary[key] = value
            if "tags" in changes:
                changes["tags"] = {**(_loads(found[0][1]) or {}), **changes["tags"]}
            if params:
                run_sql.many(
                    "INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                    [(run_id, k, _dumps(v)) for k, v in params.items()],
                )
            if metrics:
                run_sql.many(
                    "INSERT INTO run_metrics (run_id, key, value, step, ts) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, k, float(v), int(s), float(t)) for k, v, s, t in metrics],
                )
            if artifacts:
                run_sql.many(
                    "INSERT INTO run_artifacts (run_id, name, digest, size) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (run_id, name) DO UPDATE SET digest = excluded.digest, size = excluded.size",
                    [(run_id, k, a.digest, a.size) for k, a in artifacts.items()],
                )
            values = {k: (_dumps(v) if k in _DOCUMENTS else v) for k, v in changes.items()}
            if "dirty" in values and values["dirty"] is not None:
                values["dirty"] = int(values["dirty"])
            if metrics:
                values["metrics"] = _dumps(summary)
            if values:
                sets = ", ".join(f"{k} = ?" for k in values)
                run_sql(f"UPDATE runs SET {sets} WHERE id = ?", (*values.values(), run_id))
            if bulky:
                sets = ", ".join(f"{k} = ?" for k in bulky)
                run_sql(f"UPDATE run_code SET {sets} WHERE run_id = ?", (*bulky.values(), run_id))

        self._store()._transact(work)

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id or unique id prefix, whole; StoreError if none or several match."""
        store = self._store()
        ph = store.placeholder
        rows = store._query(f"{_SELECT} WHERE id = {ph}", [run_id])
        if not rows:
            rows = store._query(f"{_SELECT} WHERE id LIKE {ph} LIMIT 2", [_prefix(run_id)])
        if not rows:
            raise StoreError(f"no run {run_id!r} in the store {store.url}; list the runs with `shipway runs list`")
        if len(rows) > 1:
            raise StoreError(f"the run id prefix {run_id!r} matches several runs; give more of the id")
        run = _from_row(rows[0])
        for code, environment in store._query(f"SELECT code, environment FROM run_code WHERE run_id = {ph}", [run.id]):
            run.code, run.environment = _loads(code), _loads(environment)
        run.params = {
            k: _loads(v) for k, v in store._query(f"SELECT key, value FROM run_params WHERE run_id = {ph}", [run.id])
        }
        run.artifacts = {
            name: ArtifactRef(digest, int(size))
            for name, digest, size in store._query(
                f"SELECT name, digest, size FROM run_artifacts WHERE run_id = {ph} ORDER BY name", [run.id]
            )
        }
        return run

    def list_runs(
        self,
        *,
        project: str | None = None,
        task: str | None = None,
        status: str | None = None,
        dataset_version: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, with their last metric values but without code diff, package
        list, parameters or artifacts (`get_run` has those)."""
        store = self._store()
        ph = store.placeholder
        conditions: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("project", project),
            ("task", task),
            ("status", status),
            ("dataset_version", dataset_version),
        ):
            if value is not None:
                conditions.append(f"{column} = {ph}")
                params.append(value)
        sql = _SELECT
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY started DESC, id"
        if limit is not None:
            if not isinstance(limit, int) or limit < 0:
                raise StoreError(f"limit must be a non-negative integer or None, got {limit!r}")
            sql += f" LIMIT {int(limit)}"
        return [_from_row(row) for row in store._query(sql, params)]

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged value of one metric of a run, in step order."""
        ph = self._store().placeholder
        rows = self._store()._query(
            f"SELECT value, step, ts FROM run_metrics WHERE run_id = {ph} AND key = {ph} ORDER BY step, id",
            [run_id, key],
        )
        return [MetricPoint(float(v), int(s), float(t)) for v, s, t in rows]

    def runs_using(self, digests: Iterable[str]) -> set[str]:
        """The artifact digests among `digests` that some run records (the rest may be pruned)."""
        wanted = list(digests)
        ph = self._store().placeholder
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ", ".join([ph] * len(part))
            rows = self._store()._query(f"SELECT DISTINCT digest FROM run_artifacts WHERE digest IN ({marks})", part)
            found.update(r[0] for r in rows)
        return found


def _prefix(run_id: str) -> str:
    """A LIKE pattern matching ids that start with `run_id`; a prefix with a wildcard matches none."""
    return run_id + "%" if run_id and not set(run_id) & {"%", "_", "\\"} else ""
