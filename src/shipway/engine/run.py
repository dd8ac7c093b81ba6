"""Running a job over a dataset: here, in local worker processes, or on Ray.

Results come back in the dataset's order whatever the engine, so a job whose partial
summaries merge exactly gives the same answer on every engine and every split.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from shipway.engine.row_batches import Chunk, Source
from shipway.errors import ConfigError

__all__ = ["ENGINES", "Job", "called", "fork_context", "run", "settled", "start_worker"]

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
    preload: bool = False,
) -> Iterator[Any]:
    """The job's result for every batch of `source`, in order.

    engine "local" runs in this process (jobs=1) or in `jobs` worker processes, each
    with its own copy of the job (one model per process); "ray" runs on the Ray cluster
    that `ray.init()` joins (RAY_ADDRESS, or a local one), up to `jobs` actors at once,
    the dataset read as `blocks` blocks (default: Ray's choice).

    `preload` (local, jobs > 1): set the job up here once and fork the workers from this
    process, as `shipway serve` does with serve.preload, so that they share the loaded model's
    memory and none of them imports and loads it again (banking77: about 4 CPU seconds a
    worker). Without it each worker is a fresh process that sets up its own copy, for models
    that are not fork-safe (a forked copy of a process running BLAS or OpenMP threads can hang).
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
    if jobs == 1:
        job.setup()
        with settled():
            for chunk in source.chunks(batch_size):
                yield called(job, chunk, source.format)
        return
    context = fork_context() if preload else None
    if context is not None:
        job.setup()
        with settled():  # frozen before the fork: the workers' collections leave the shared pages alone
            yield from _pooled(context, job, source, jobs, batch_size, _adopt)
        return
    yield from _pooled(multiprocessing.get_context("spawn"), job, source, jobs, batch_size, _start)


def _pooled(
    context: Any, job: Job, source: Source, jobs: int, batch_size: int, start: Callable[[Job], None]
) -> Iterator[Any]:
    with context.Pool(jobs, initializer=start, initargs=(job,)) as pool:
        # At most two batches per worker in flight: reading waits for the workers
        # (backpressure), and results are taken in the order the batches were sent.
        pending: deque[Any] = deque()
        # The workers turn the chunks into rows: the reading process only reads and writes.
        for chunk in source.chunks(batch_size):
            pending.append(pool.apply_async(_call, (chunk, source.format)))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


_job: Job | None = None
_failed: BaseException | None = None


def _adopt(job: Job) -> None:
    global _job
    _job = job  # forked: set up in the parent already


def fork_context() -> Any:
    """The multiprocessing context that forks, where the platform has one (None elsewhere)."""
    return multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None


def start_worker(job: Job) -> Exception | None:
    """Set the job up in a fresh worker process; the error if that failed."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker, set before the model loads
    try:
        job.setup()
    except Exception as err:
        return err
    gc.freeze()  # for good: the worker lives for this run only
    return None


def _start(job: Job) -> None:
    global _job, _failed
    # An initializer that raises kills its worker, and the pool starts another one for ever:
    # keep the error and raise it with the first batch, so the run stops with it.
    _failed = start_worker(job)
    if _failed is None:
        _job = job


def _call(chunk: Chunk, format: str) -> Any:
    if _failed is not None:
        raise _failed
    assert _job is not None
    return called(_job, chunk, format)


def called(job: Job, chunk: Chunk, format: str) -> Any:
    """The job on a chunk: a Parquet chunk's Arrow table itself for a job with a `table`
    method (no row built per row; the columns keep their types), its rows otherwise."""
    if format == "parquet" and hasattr(job, "table"):
        return job.table(chunk.table)
    return job(chunk.rows())


@contextmanager
def settled() -> Iterator[None]:
    """Keep the collector off what the job's setup loaded (the model) while the job runs.

    A loaded model is a large graph of objects that lives as long as the run; every full
    collection would walk it again, and a batch's thousands of new objects set off many of
    them (banking77: its predict_batch took about 57 us a row with the model in the
    collector's view, 39 us without). Frozen objects are only out of its view, not freed."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
