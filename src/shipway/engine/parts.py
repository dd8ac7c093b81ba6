"""A dataset in parts, each read, run and written by a worker process of its own.

`run` (engine/run.py) reads the file in one process and ships every chunk to the workers and
every answer back; with two workers on two cores that hand-over cost about a quarter of a row's
CPU. Here the parent only plans the parts from the file's layout, and each worker reads its
own part, runs the job on it and hands the results to a sink (scoring writes them to a file of
its own); the parent hears counts and the name of what each part wrote.

How a file is cut, so that the parts' rows, one part after the other, are the file's rows as
one reader gives them (row_batches.py's rules):

- Parquet: row ranges in the dataset's order, cut at a row group's start where one is near;
  a part that starts inside a row group decodes that group from its start and skips the rows
  before its own (cheap beside the work on a row).
- JSON Lines: byte ranges, each cut just after a newline, so every part starts at a line.
- CSV with no quote character: byte ranges cut after a newline, which then always ends a row;
  each part is read with the header's column names.
- CSV with a quote character: a newline may sit inside a quoted field, and only a parse from
  the file's start can tell (counting quotes is not enough: a quote inside an unquoted field is
  a plain character). The parent reads the file once, with the same reader, into an
  uncompressed Arrow file that the workers map into memory, and the parts are row ranges of it.
"""

from __future__ import annotations

import gc
import mmap
import os
import pickle
import re
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from shipway.engine.row_batches import Chunk, Source, jsonl_chunks, table_chunks
from shipway.engine.run import Job, called, fork_context, settled, start_worker
from shipway.errors import ShipwayError, WorkerError

__all__ = ["Part", "Sink", "plan", "run_parts"]

PER_JOB = 4  # parts per worker: the last parts to finish are short, and the parent writes the early ones meanwhile
MAX_ROWS = 500_000  # at most this many rows in a part (Parquet, a converted CSV)
MAX_BYTES = 64 << 20  # at most this many bytes in a part (JSON Lines, CSV)


@dataclass(frozen=True)
class Part:
    """Rows `start` to `stop` (Parquet, a converted CSV) or bytes `start` to `stop` (JSON Lines,
    CSV) of a source: part `index` of `count`."""

    source: Source
    index: int
    count: int
    start: int
    stop: int
    unit: str  # "rows" or "bytes"
    groups: tuple[tuple[int, int, int], ...] = ()  # Parquet: (fragment, row group, its first row) it reads
    converted: Path | None = None  # CSV with quotes: the Arrow file its rows are read from

    def __str__(self) -> str:
        unit = "rows" if self.unit == "rows" else "bytes"
        return (
            f"part {self.index + 1} of {self.count} ({unit} {self.start:,} to {self.stop - 1:,} of {self.source.path})"
        )

    def chunks(self, size: int) -> Iterator[Chunk]:
        """The part's rows, `size` at a time, as `Source.chunks` gives them."""
        if self.source.format == "jsonl":
            with self.source.path.open("rb") as fh:
                fh.seek(self.start)
                yield from jsonl_chunks(fh, size, self.stop)
        else:
            yield from table_chunks(self._batches(), size)

    def _batches(self) -> Iterator[Any]:
        import pyarrow as pa

        if self.converted is not None:
            table = pa.ipc.open_file(pa.memory_map(str(self.converted))).read_all()  # no copy: mapped
            yield from table.slice(self.start, self.stop - self.start).to_batches()
        elif self.source.format == "csv":
            import pyarrow.csv as csv

            with pa.memory_map(str(self.source.path)) as mapped:
                mapped.seek(self.start)
                data = mapped.read_buffer(self.stop - self.start)
            if not re.search(rb"\S", memoryview(data)):  # blank lines only: no rows (the reader would call it empty)
                return
            options = csv.ReadOptions(column_names=list(self.source.columns), use_threads=False)
            with csv.open_csv(
                pa.BufferReader(data),
                read_options=options,
                parse_options=self.source.csv_parse_options(),
                convert_options=self.source.csv_convert_options(),
            ) as reader:
                yield from reader
        else:
            yield from self._parquet()

    def _parquet(self) -> Iterator[Any]:
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        dataset = ds.dataset(self.source.paths, format="parquet")
        fragments = list(dataset.get_fragments())
        columns = list(self.source.select) if self.source.select is not None else None
        names = columns if columns is not None else dataset.schema.names
        for fragment, group, first in self.groups:
            file = pq.ParquetFile(fragments[fragment].path)
            if _same_fields(file.schema_arrow, dataset.schema, names):
                # Read as a stream: it decodes no further than the part needs (the dataset's
                # scanner reads ahead to the end of the row group).
                batches = file.iter_batches(65_536, row_groups=[group], columns=columns, use_threads=False)
            else:  # a file of another schema in a folder: the dataset's reader makes it the dataset's
                batches = (
                    fragments[fragment]
                    .subset(row_group_ids=[group])
                    .to_batches(schema=dataset.schema, columns=columns, use_threads=False)
                )
            at = first
            for batch in batches:
                n = batch.num_rows
                lo, hi = max(self.start - at, 0), min(self.stop - at, n)
                if hi > lo:
                    yield batch.slice(lo, hi - lo)
                at += n
                if at >= self.stop:
                    return


def _same_fields(have: Any, want: Any, names: list[str]) -> bool:
    return all(name in have.names and have.field(name).equals(want.field(name)) for name in names)


def plan(source: Source, jobs: int, folder: Path) -> list[Part]:
    """The parts to read `source` in with `jobs` workers: about `PER_JOB` per worker, fewer for
    a small file, more for a large one. `folder` holds a converted CSV (the caller removes it)."""
    if source.format == "parquet":
        return _parquet_parts(source, jobs)
    if source.format == "jsonl":
        return _byte_parts(source, jobs, 0)
    with source.path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return []
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            if mapped.find(b'"') < 0:
                header = mapped.find(b"\n")
                return [] if header < 0 else _byte_parts(source, jobs, header + 1)
    return _converted_parts(source, jobs, folder)


def _count(total: int, jobs: int, most: int, least: int) -> int:
    """How many parts of `total` rows or bytes: PER_JOB per worker and at least one per `most`,
    but none smaller than `least` beyond one per worker (a small file is still split `jobs` ways)."""
    return max(1, min(max(jobs * PER_JOB, -(-total // most)), max(jobs, total // least), total))


def _byte_parts(source: Source, jobs: int, begin: int) -> list[Part]:
    with source.path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size <= begin:
            return []
        n = _count(size - begin, jobs, MAX_BYTES, 4096)
        cuts = [begin]
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            for i in range(1, n):
                at = begin + (size - begin) * i // n
                newline = mapped.find(b"\n", max(at - 1, cuts[-1]))
                if newline < 0 or newline + 1 >= size:
                    break
                if newline + 1 > cuts[-1]:
                    cuts.append(newline + 1)
    cuts.append(size)
    return _parts(source, cuts, "bytes")


def _parquet_parts(source: Source, jobs: int) -> list[Part]:
    import pyarrow.dataset as ds

    groups: list[tuple[int, int, int, int]] = []  # fragment, row group, first row, rows
    total = 0
    for f, fragment in enumerate(ds.dataset(source.paths, format="parquet").get_fragments()):
        metadata = fragment.metadata
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            groups.append((f, group, total, rows))
            total += rows
    if total == 0:
        return []
    n = _count(total, jobs, MAX_ROWS, 1024)
    starts = [g[2] for g in groups]
    cuts = [0]
    for i in range(1, n):
        at = total * i // n
        near = min(starts, key=lambda s: abs(s - at))  # a row group's start, if one is near
        cut = near if abs(near - at) <= total // n // 4 else at
        if cut > cuts[-1]:
            cuts.append(cut)
    cuts.append(total)
    parts = _parts(source, cuts, "rows")
    return [
        _with_groups(
            part,
            tuple((f, g, first) for f, g, first, rows in groups if first < part.stop and first + rows > part.start),
        )
        for part in parts
    ]


def _with_groups(part: Part, groups: tuple[tuple[int, int, int], ...]) -> Part:
    return Part(part.source, part.index, part.count, part.start, part.stop, part.unit, groups)


def _converted_parts(source: Source, jobs: int, folder: Path) -> list[Part]:
    import pyarrow as pa

    converted = folder / "input.arrow"
    total = 0
    writer = None
    try:
        for batch in source._tables():
            if writer is None:
                writer = pa.ipc.new_file(str(converted), batch.schema)
            writer.write_batch(batch)
            total += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    if total == 0:
        return []
    n = _count(total, jobs, MAX_ROWS, 1024)
    cuts = sorted({total * i // n for i in range(n)} | {total})
    return [
        Part(p.source, p.index, p.count, p.start, p.stop, p.unit, converted=converted)
        for p in _parts(source, cuts, "rows")
    ]


def _parts(source: Source, cuts: list[int], unit: str) -> list[Part]:
    count = len(cuts) - 1
    return [Part(source, i, count, cuts[i], cuts[i + 1], unit) for i in range(count)]


class Sink(Protocol):
    """What a worker does with a part's results: `sink(part, results, report)` consumes them
    (writes them somewhere), may `report(value)` to the parent as it goes, and returns what the
    parent gets for the part (small: it is pickled)."""

    def __call__(self, part: Part, results: Iterator[Any], report: Callable[[Any], None]) -> Any: ...


def run_parts(
    job: Job, parts: list[Part], sink: Sink, *, jobs: int, batch_size: int = 1024, preload: bool = False
) -> Generator[tuple[str, Part, Any], None, None]:
    """Run `job` over every part in up to `jobs` worker processes, each taking the next part
    when it is done with one; `sink` gets each part's results in the worker.

    Yields ("report", part, value) for what a sink reports and ("done", part, value) for what it
    returns, as they come (parts finish out of order). A worker's error is raised here as it was
    raised there; a worker that dies is a WorkerError naming its part. `preload`: set the job
    up here and fork the workers from this process, as `run` does."""
    if not parts:
        return
    context = fork_context() if preload else None
    if context is not None:
        job.setup()
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
    spawned = context.get_start_method() == "spawn"
    workers: dict[Any, Any] = {}  # our end of each worker's pipe: its process
    held: dict[Any, Part] = {}  # the part each worker is running
    todo = deque(parts)
    with settled():  # frozen before the fork: the workers' collections leave the shared pages alone
        try:
            for _ in range(min(jobs, len(parts))):  # each starts with a part
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=_work, args=(job, sink, theirs, batch_size, spawned), daemon=True, name="shipway-part"
                )
                process.start()
                theirs.close()
                workers[ours] = process
                held[ours] = todo.popleft()
                ours.send(held[ours])
            while held:
                conn: Any
                for conn in wait(list(held)):
                    part = held[conn]
                    try:
                        kind, value = conn.recv()
                    except (EOFError, OSError):
                        process = workers[conn]
                        process.join(5)
                        raise WorkerError(
                            f"the worker process running {part} stopped ({_exit(process.exitcode)}) before it "
                            "finished, so the run stopped and wrote no output. A crash in the model's own code, "
                            "or running out of memory, does this: score that part's rows with --jobs 1 to see "
                            "the crash in this process, or with fewer jobs to use less memory."
                        ) from None
                    if kind == "failed":
                        raise value
                    yield kind, part, value  # "report" or "done"
                    if kind == "done":
                        if todo:
                            held[conn] = todo.popleft()
                            conn.send(held[conn])
                        else:
                            del held[conn]
                            conn.send(None)
        finally:
            for conn, process in workers.items():
                if process.is_alive():
                    process.terminate()
                process.join()
                conn.close()


def _exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _work(job: Job, sink: Sink, conn: Connection, batch_size: int, spawned: bool) -> None:
    """A worker: set the job up (unless forked from a process that did), then run the parts it is sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops the workers
    if spawned:
        failed = start_worker(job)
        if failed is not None:
            _send_error(conn, failed)
            return
    else:
        gc.freeze()
    try:
        while (part := conn.recv()) is not None:
            results = (called(job, chunk, part.source.format) for chunk in part.chunks(batch_size))
            conn.send(("done", sink(part, results, lambda value: conn.send(("report", value)))))
    except (EOFError, BrokenPipeError):  # the parent has gone: so does this worker
        return
    except Exception as err:
        _send_error(conn, err)


def _send_error(conn: Connection, err: BaseException) -> None:
    try:
        pickle.loads(pickle.dumps(err))  # an error that does not come back whole comes back as its text
    except Exception:
        err = ShipwayError(f"{type(err).__name__}: {err}")
    try:
        conn.send(("failed", err))
    except (EOFError, BrokenPipeError):
        pass
