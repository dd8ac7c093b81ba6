"""The Ray engine: the same job on a Ray cluster through Ray Data.

Each actor of the pool sets the job up once (one loaded model per worker) and is called
on batches; Ray Data streams the dataset through them with backpressure, and the driver
reads the results in the dataset's order. A job's partial summaries travel back pickled
in a one-row table and merge on the driver. Imported only when --engine ray is asked for.
"""

from __future__ import annotations

import gc
import pickle
from collections.abc import Iterator
from typing import Any

from shipway.engine.row_batches import Source, parse_line, rows_of
from shipway.errors import ConfigError

__all__ = ["run_on_ray"]

PARTIAL = "__shipway_partial__"


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("--engine ray needs Ray Data; install it with pip install 'shipway[ray]'") from None
    return ray


class _Worker:
    """A Ray Data actor: one job, set up once, called on every batch it is given."""

    def __init__(self, job: Any, format: str) -> None:
        self.job = job
        self.format = format
        job.setup()
        gc.freeze()  # the loaded model out of the collector's view for the actor's life (run.settled)

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa

        if self.format == "jsonl":
            result = self.job([parse_line(line) for line in table.column("text").to_pylist()])
        elif self.format == "parquet" and hasattr(self.job, "table"):  # it takes the Arrow batch itself
            result = self.job.table(table)
        else:
            result = self.job(rows_of(table))
        if isinstance(result, pa.Table):
            return result
        return pa.table({PARTIAL: pa.array([pickle.dumps(result)], pa.binary())})


def dataset(source: Source, blocks: int | None = None) -> Any:
    """The Ray dataset of a source, read with the same options as the local reader."""
    ray = _ray()
    path = str(source.path)
    if source.format == "csv":
        return ray.data.read_csv(
            path,
            parse_options=source.csv_parse_options(),
            convert_options=source.csv_convert_options(),
            override_num_blocks=blocks,
        )
    if source.format == "jsonl":
        return ray.data.read_text(path, drop_empty_lines=True, override_num_blocks=blocks)
    tail = source.tail_table()  # the store's entries since the export: one more block, read last
    if tail is not None and not source.files:
        return ray.data.from_arrow(tail)
    data = ray.data.read_parquet(source.paths, override_num_blocks=blocks)
    # What Ray 2.5x asks for instead of read_parquet(columns=...), which it deprecates.
    data = data.select_columns(list(source.select)) if source.select is not None else data
    return data if tail is None else data.union(ray.data.from_arrow(tail))


def run_on_ray(job: Any, source: Source, *, jobs: int, batch_size: int, blocks: int | None = None) -> Iterator[Any]:
    ray = _ray()
    if not ray.is_initialized():
        ray.init()  # RAY_ADDRESS, if set, names the cluster to join
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    # The pool leaves one CPU of the cluster to the read tasks: with every CPU held by an actor
    # a read task waits for one for ever (seen on a 2-CPU cluster: both actors up, the read
    # pending, the run stalled). On a cluster of one CPU the pool still gets its one actor.
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = max(1, min(jobs, cpus - 1))
    results = dataset(source, blocks).map_batches(
        _Worker,
        fn_constructor_kwargs={"job": job, "format": source.format},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        num_cpus=1,
    )
    for table in results.iter_batches(batch_format="pyarrow", batch_size=None):
        if PARTIAL in table.column_names:
            for blob in table.column(PARTIAL).to_pylist():
                yield pickle.loads(blob)
        elif table.num_rows:
            yield table
