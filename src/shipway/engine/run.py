"""Running a job over a dataset: here, in local worker processes, or on Ray.

Results come back in the dataset's order whatever the engine, so a job whose partial
summaries merge exactly gives the same answer on every engine and every split.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

from shipway.engine.row_batches import Source
from shipway.errors import ConfigError

__all__ = ["ENGINES", "Job", "run"]

ENGINES = ("local", "ray")


class Job(Protocol):
    """What an engine runs: set up once per worker, then called on batches of rows."""

    def setup(self) -> None: ...

    def __call__(self, rows: list[dict[str, Any]]) -> Any: ...


def run(
    job: Job,
    source: Source,
    *,
    engine: str = "local",
    jobs: int = 1,
    batch_size: int = 1024,
    blocks: int | None = None,
) -> Iterator[Any]:
    """The job's result for every batch of `source`, in order.

    engine "local" runs in this process (jobs=1) or in `jobs` worker processes, each
    with its own copy of the job (one model per process); "ray" runs on the Ray cluster
    that `ray.init()` joins (RAY_ADDRESS, or a local one), up to `jobs` actors at once,
    the dataset read as `blocks` blocks (default: Ray's choice).
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not one of {', '.join(ENGINES)}; use --engine local or ray.")
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, not {jobs}.")
    if batch_size < 1:
        raise ConfigError(f"the batch size must be at least 1, not {batch_size}.")
    if engine == "ray":
        from shipway.engine.on_ray import run_on_ray

        yield from run_on_ray(job, source, jobs=jobs, batch_size=batch_size, blocks=blocks)
        return
    # A job with a `table` method takes Parquet batches as Arrow tables (no row built per row).
    tabular = hasattr(job, "table") and source.format == "parquet"
    batches = source.tables(batch_size) if tabular else source.batches(batch_size)
    if jobs == 1:
        job.setup()
        call = job.table if tabular else job  # type: ignore[attr-defined]
        for batch in batches:
            yield call(batch)
        return
    # spawn, not fork: a forked copy of a process that has started BLAS or OpenMP threads
    # can hang, and each worker loads its own model anyway.
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_start, initargs=(job,)) as pool:
        # At most two batches per worker in flight: reading waits for the workers
        # (backpressure), and results are taken in the order the batches were sent.
        pending: deque[Any] = deque()
        for batch in batches:
            pending.append(pool.apply_async(_call, (batch, tabular)))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


_job: Job | None = None
_failed: BaseException | None = None


def _start(job: Job) -> None:
    global _job, _failed
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker, set before the model loads
    try:
        job.setup()
    except Exception as err:
        # An initializer that raises kills its worker, and the pool starts another one for ever:
        # keep the error and raise it with the first batch, so the run stops with it.
        _failed = err
        return
    _job = job


def _call(batch: Any, tabular: bool) -> Any:
    if _failed is not None:
        raise _failed
    assert _job is not None
    return _job.table(batch) if tabular else _job(batch)  # type: ignore[attr-defined]
