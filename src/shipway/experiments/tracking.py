"""The run-tracking API that training code (or a notebook) calls.

    with shipway.run(name="tfidf-lr") as run:
        params = run.configure({"C": 20.0, "max_iter": 1000})
        seed = run.seed(0)
        ...
        run.log_metric("valid_accuracy", 0.91)
        run.log_artifact("artifacts/model.joblib")

What is logged is kept in memory and written to the store in one transaction every
`experiments.flush_interval_s`, at the end of the run, on failure and at exit, so a
metric costs microseconds; a hard kill loses at most the last interval.

Under `shipway train` the training step runs in a child process; `start_run()` there
joins the run that the command started (its id comes in `SHIPWAY_RUN_ID`), so what the
code logs lands in the same run and the command records the rest.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from shipway.errors import ConfigError
from shipway.experiments import _active_runs
from shipway.experiments.config import apply_overrides, flatten

if TYPE_CHECKING:
    from shipway.store.base import Store
    from shipway.store.objects import ObjectStore
    from shipway.store.runs import RunRecord

__all__ = ["ENV", "Run", "active_run", "open_run", "run", "start_run"]

# What `shipway train` hands the training step it starts (docs/experiments.md).
ENV = {
    "run": "SHIPWAY_RUN_ID",
    "overrides": "SHIPWAY_RUN_OVERRIDES",
    "seeds": "SHIPWAY_RUN_SEEDS",
    "dataset_dir": "SHIPWAY_DATASET_DIR",
    "dataset_version": "SHIPWAY_DATASET_VERSION",
    "artifacts": "SHIPWAY_ARTIFACTS_DIR",
    "objects": "SHIPWAY_OBJECTS_DIR",
}


class Run:
    """A run being recorded. Get one from `start_run()` or `run()`; it is not built directly.

    Every `log_*` method only buffers; `flush()` writes. `end()` flushes and closes it.
    """

    def __init__(
        self,
        store: Store,
        objects: ObjectStore,
        record: RunRecord,
        *,
        owner: bool = True,
        flush_interval_s: float = 1.0,
        overrides: Mapping[str, Any] | None = None,
        seeds: Mapping[str, int] | None = None,
        close_store: bool = True,
        mlflow_uri: str = "",
    ) -> None:
        self.store = store
        self.objects = objects
        self.id = record.id
        self.project = record.project
        self.record = record
        self.owner = owner  # False: joined from a child process; the starter ends it
        self.flush_interval_s = flush_interval_s
        self.overrides = dict(overrides or {})
        self.seed_overrides = dict(seeds or {})
        self.ended = False
        self.mlflow_uri = mlflow_uri  # copy the run there when it ends (experiments.mlflow_uri)
        self._close_store = close_store
        self._params: dict[str, Any] = {}
        self._metrics: list[tuple[str, float, int, float]] = []
        self._steps: dict[str, int] = {}
        self._artifacts: dict[str, Any] = {}
        self._fields: dict[str, Any] = {}
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    # -- what training code records --

    def log_param(self, key: str, value: Any) -> None:
        """Record a parameter (any JSON value); a later value of the same key replaces it."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        checked = {_key(key, "parameter"): value for key, value in params.items()}
        with self._lock:
            self._params.update(checked)
        self._maybe_flush()

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record a metric's value; every value is kept, by step (default: 0, 1, 2... per key)."""
        key = _key(key, "metric")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"metric {key!r} must be a number, got {value!r}; pass a float or an int") from None
        # Under the lock: a flush in another thread swaps the buffer out.
        with self._lock:
            if step is None:
                step = self._steps.get(key, -1) + 1
            self._steps[key] = step
            self._metrics.append((key, number, step, time.time()))
        self._maybe_flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_artifact(self, path: str | Path, name: str | None = None) -> str:
        """Copy a file into the artifact folder (by its SHA-256) and record it; return the digest.

        A folder records every file in it, named by their paths relative to it."""
        from shipway.store.runs import ArtifactRef

        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        digest = ""
        for file in files:
            label = (name or path.name) if file == path else f"{name or path.name}/{file.relative_to(path).as_posix()}"
            digest, size = self.objects.put(file)
            with self._lock:
                self._artifacts[label] = ArtifactRef(digest, size)
        self._maybe_flush()
        return digest

    def set_tag(self, key: str, value: str) -> None:
        with self._lock:
            self._fields.setdefault("tags", {})[_key(key, "tag")] = str(value)

    def set(self, **fields: Any) -> None:
        """Set run fields (`model_version`, `task`, `recipe`, `dataset_version`, `command`...)."""
        with self._lock:
            self._fields.update(fields)
        for key, value in fields.items():
            if hasattr(self.record, key):
                setattr(self.record, key, value)

    def configure(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """`defaults` with the run's overrides (`--set key=value`) applied; recorded as the
        run's configuration and as flattened parameters. Returns the resolved configuration."""
        resolved = apply_overrides(defaults, self.overrides)
        self.set(config=resolved)
        self.log_params(flatten(resolved))
        return resolved

    def seed(self, default: int = 0, name: str = "seed") -> int:
        """The seed `name` (the recorded one when reproducing), recorded; seeds `random` and, if
        imported, numpy's global generator. Pass it on to anything else that draws numbers."""
        value = int(self.seed_overrides.get(name, default))
        self.record.seeds[name] = value
        self.set(seeds=dict(self.record.seeds))
        random.seed(value)
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed(value % 2**32)
        return value

    def use_dataset(self, version: str, task: str | None = None) -> None:
        """Record the dataset version (and task) the run learns from."""
        self.set(dataset_version=version, **({"task": task} if task else {}))

    @property
    def dataset_dir(self) -> Path | None:
        """The dataset folder `shipway train` prepared for this run, if any."""
        value = os.environ.get(ENV["dataset_dir"])
        return Path(value) if value else None

    @property
    def artifacts_dir(self) -> Path | None:
        """The folder `shipway train` wants the model's artifacts in, if any."""
        value = os.environ.get(ENV["artifacts"])
        return Path(value) if value else None

    # -- writing --

    def flush(self) -> None:
        """Write what was logged since the last flush, in one transaction."""
        with self._lock:
            params, self._params = self._params, {}
            metrics, self._metrics = self._metrics, []
            artifacts, self._artifacts = self._artifacts, {}
            fields, self._fields = self._fields, {}
            self._last_flush = time.monotonic()
            if not (params or metrics or artifacts or fields):
                return
            try:
                self.store.record_run(self.id, params=params, metrics=metrics, artifacts=artifacts, fields=fields)
            except BaseException:
                # Put it back, so that a later flush (at exit) can still write it.
                self._params = {**params, **self._params}
                self._metrics = metrics + self._metrics
                self._artifacts = {**artifacts, **self._artifacts}
                self._fields = {**fields, **self._fields}
                raise

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Flush and close the run: `finished`, or `failed` with its error. A second call does nothing."""
        if self.ended:
            return
        self.ended = True
        try:
            if self.owner:
                self._fields.update(status=status, ended=time.time(), error=error)
            elif error is not None:
                self.set_tag("error", error)  # the starting command records the failure
            self.flush()
            if self.owner and self.mlflow_uri:
                from shipway.experiments.mlflow_bridge import safe_log_to_mlflow

                safe_log_to_mlflow(self.store, self.objects, self.id, self.mlflow_uri)
        finally:
            _active_runs.forget(self)
            if self._close_store:
                self.store.close()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.end()
        else:
            self.end("failed", _active_runs.describe(exc_type, exc, tb))

    def __repr__(self) -> str:
        return f"Run({self.id!r}, project={self.project!r})"


def start_run(
    project: str | Path = ".",
    *,
    name: str | None = None,
    task: str | None = None,
    recipe: str | None = None,
    dataset_version: str | None = None,
    tags: Mapping[str, str] | None = None,
    store: Store | None = None,
) -> Run:
    """Start a run of the project in `project` (a folder with shipway.toml, default the current
    one), recording its code and environment; or, under `shipway train`, join its run.

    The run is written to the project's store (`store.url`) and its files to the artifact
    folder (`experiments.objects`). End it with `run.end()`, or use `with shipway.run(...)`.
    """
    from shipway.core.settings import load_settings

    root = Path(project).resolve()
    if not root.is_dir():
        raise ConfigError(
            f"start_run: the project folder {str(root)!r} does not exist; pass the folder of shipway.toml"
        )
    settings = load_settings(root)
    joined = os.environ.get(ENV["run"])
    owned_store = store is None
    if store is None:
        from shipway.store import open_store

        store = open_store(settings["store.url"], root)
    objects = _objects(settings)
    try:
        if joined:
            record = store.get_run(joined)
            found = Run(
                store,
                objects,
                record,
                owner=False,
                flush_interval_s=settings["experiments.flush_interval_s"],
                overrides=_env_json(ENV["overrides"]),
                seeds=_env_json(ENV["seeds"]),
                close_store=owned_store,
            )
            # What the starting command set (a --name, the dataset) stands; the code fills in the rest.
            extra = {"name": name, "task": task, "recipe": recipe, "dataset_version": dataset_version}
            found.set(**{k: v for k, v in extra.items() if v is not None and getattr(record, k) is None})
            for key, value in (tags or {}).items():
                found.set_tag(key, value)
            _active_runs.track(found)
        else:
            found = open_run(
                store,
                objects,
                project=settings["name"],
                root=root,
                name=name,
                task=task,
                recipe=recipe,
                dataset_version=dataset_version,
                tags=tags,
                flush_interval_s=settings["experiments.flush_interval_s"],
                close_store=owned_store,
                mlflow_uri=settings["experiments.mlflow_uri"],
            )
    except BaseException:
        if owned_store:
            store.close()
        raise
    return found


def open_run(
    store: Store,
    objects: ObjectStore,
    *,
    project: str,
    root: Path,
    name: str | None = None,
    task: str | None = None,
    recipe: str | None = None,
    dataset_version: str | None = None,
    tags: Mapping[str, str] | None = None,
    command: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    seeds: Mapping[str, int] | None = None,
    flush_interval_s: float = 1.0,
    close_store: bool = False,
    parent: str | None = None,
    mlflow_uri: str = "",
) -> Run:
    """Create a run in `store` with the code of `root` and this environment (for commands
    and recipes that hold a store already); it is ended at exit if nobody ends it."""
    from shipway.experiments.provenance import code_state, environment
    from shipway.store.runs import RunRecord

    code = code_state(root)
    record = RunRecord(
        id=uuid.uuid4().hex,
        project=project,
        name=name,
        started=time.time(),
        task=task,
        recipe=recipe,
        dataset_version=dataset_version,
        code_commit=code["commit"],
        dirty=code["dirty"],
        code=code,
        environment=environment(),
        overrides=dict(overrides or {}),
        seeds={k: int(v) for k, v in (seeds or {}).items()},
        tags=dict(tags or {}),
        command=command if command is not None else " ".join(sys.argv),
        parent=parent,
    )
    store.insert_run(record)
    found = Run(
        store,
        objects,
        record,
        flush_interval_s=flush_interval_s,
        overrides=overrides,
        seeds=seeds,
        close_store=close_store,
        mlflow_uri=mlflow_uri,
    )
    _active_runs.track(found)
    return found


@contextlib.contextmanager
def run(project: str | Path = ".", **options: Any) -> Iterator[Run]:
    """`start_run(...)` as a context manager: the run ends `finished`, or `failed` with the
    error when the block raises."""
    started = start_run(project, **options)
    with started:
        yield started


def active_run() -> Run | None:
    """The newest run this process started and has not ended, if any."""
    found = _active_runs.latest()
    return found if isinstance(found, Run) else None


def _key(key: str, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"a {what} name must be a non-empty string, got {key!r}")
    return key


def _objects(settings: Any) -> ObjectStore:
    from shipway.store.objects import ObjectStore

    override = os.environ.get(ENV["objects"])
    return ObjectStore(Path(override) if override else settings.path("experiments.objects"))


def _env_json(name: str) -> dict[str, Any]:
    raw = os.environ.get(name)
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ConfigError(f"${name} is not JSON ({err}): {raw[:80]!r}; it is set by `shipway train`") from None
    return dict(value)
