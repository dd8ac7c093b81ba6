"""`shipway score --jobs N`: each worker reads, scores and writes its own parts of the dataset.

The parent plans the parts (engine/parts.py), and each worker process scores one part at a time
into an uncompressed Arrow file of its own, reporting its counts as it goes. The parent takes the
parts' files in order as they are finished, numbers their rows and writes them into the one
Parquet file, while the workers score the later parts: no row passes through it on the way in,
and on the way out it maps the answers, without a copy, and only encodes them as Parquet, as one
job does. The output is the one `--jobs 1` writes: the same rows in the same order, the same
columns, the same row groups.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from shipway.engine import Source
from shipway.engine.parts import Part, plan, run_parts

__all__ = ["PartFiles", "scored_in_parts"]


@dataclass(frozen=True)
class PartFiles:
    """The workers' sink: a part's answers into `folder`/part-N.arrow; (file, rows, failed rows)
    back to the parent, or no file for a part without rows."""

    folder: Path

    def __call__(
        self, part: Part, results: Iterator[pa.Table], report: Callable[[Any], None]
    ) -> tuple[str | None, int, int]:
        path = self.folder / f"part-{part.index:05d}.arrow"
        writer = None
        rows = errors = 0
        try:
            for table in results:
                if writer is None:
                    writer = pa.ipc.new_file(str(path), table.schema)
                writer.write_table(table)
                n, failed = table.num_rows, table.num_rows - table.column("error").null_count
                rows += n
                errors += failed
                report((n, failed))
        finally:
            if writer is not None:
                writer.close()
        return (str(path) if writer is not None else None, rows, errors)


def scored_in_parts(
    job: Any,
    source: Source,
    folder: Path,
    *,
    jobs: int,
    batch_size: int,
    preload: bool,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[pa.Table]:
    """The answers for every row of `source`, a part's table at a time in the file's order,
    scored by `jobs` worker processes; `folder` (made here, removed at the end) holds the
    parts' files. `progress(rows, errors)` hears the rows scored so far, in any part."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        parts = plan(source, jobs, folder)
        finished: dict[int, str | None] = {}
        next_part = 0
        rows = errors = 0
        # closed before the folder is removed: the workers stop before their files go
        with closing(
            run_parts(job, parts, PartFiles(folder), jobs=jobs, batch_size=batch_size, preload=preload)
        ) as events:
            for kind, part, value in events:
                if kind == "report":
                    rows, errors = rows + value[0], errors + value[1]
                    if progress is not None:
                        progress(rows, errors)
                    continue
                finished[part.index] = value[0]
                while next_part in finished:
                    path = finished.pop(next_part)
                    next_part += 1
                    if path is not None:
                        table = pa.ipc.open_file(pa.memory_map(path)).read_all()  # mapped, not copied
                        Path(path).unlink()  # the mapping keeps its pages until the table is written
                        yield table
    finally:
        shutil.rmtree(folder, ignore_errors=True)
