"""Datasets as batches of rows: CSV, JSON Lines and Parquet, read in chunks with pyarrow.

Every engine reads a file through the same rules, so the rows a job sees do not depend on
where it runs or how the file was split:

- CSV: every column is read as text (the input schema converts "0.9" to a float where it
  wants one); an empty cell is a missing field, so the field's default applies; a quoted field
  may hold newlines.
- JSON Lines: each line is parsed on its own, exactly as written; a line that is not JSON
  becomes a row holding the error, which the job reports for that row.
- Parquet: the columns' own types; a null is a missing field, as in CSV.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from shipway.errors import DataError

__all__ = ["FORMATS", "NOT_JSON", "Chunk", "Source", "jsonl_chunks", "rows_of", "table_chunks"]

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}

# The key of a row whose JSON Lines text could not be parsed; its value is the parser's message.
NOT_JSON = "\x00not-json"


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise DataError(
            "reading and writing datasets needs pyarrow; install it with pip install 'shipway[analysis]'"
        ) from None
    return pyarrow


@dataclass(frozen=True)
class Source:
    """A dataset file (or a folder of Parquet files) and its format."""

    path: Path
    format: str
    columns: tuple[str, ...] = ()  # CSV: the header, read once so every reader types it the same
    files: tuple[Path, ...] = ()  # Parquet: these files only (the committed files of an export)
    select: tuple[str, ...] | None = None  # Parquet: read only these columns
    # Parquet: rows read after the files' (an Arrow table): the entries the store logged since
    # the export's last run, so that a job over an export sees what a read of the store sees.
    tail: Any = field(default=None, compare=False)

    @classmethod
    def parquet(cls, files: Sequence[Path], select: Sequence[str] | None = None, tail: Any = None) -> Source:
        """Parquet files (say, an export's committed ones), then the rows of `tail` (an Arrow
        table with the files' columns, or None), reading only the `select` columns they have."""
        if tail is not None and not tail.num_rows:
            tail = None
        if not files and tail is None:
            raise DataError("there are no Parquet files to read; check the export's folder and the time window.")
        folder = Path(files[0]).parent if files else Path(".")
        source = cls(folder, "parquet", files=tuple(Path(f) for f in files), tail=tail)
        return source.selecting(select) if select is not None else source

    def selecting(self, select: Sequence[str]) -> Source:
        """The same Parquet data, reading only the columns of `select` it has (a job's own)."""
        if self.format != "parquet":
            return self
        _pyarrow()
        import pyarrow.dataset as ds

        if self.files or self.tail is None:
            names = set(ds.dataset(self.paths, format="parquet").schema.names)
        else:
            names = set(self.tail.column_names)
        return replace(self, select=tuple(c for c in select if c in names))

    def tail_table(self) -> Any:
        """The tail's rows with the files' columns and types (the columns of `select`), or None."""
        if self.tail is None:
            return None
        import pyarrow as pa
        import pyarrow.dataset as ds

        table = self.tail
        if self.select is not None:
            table = table.select([c for c in self.select if c in table.column_names])
        if self.files:  # the files' types: a batch that spans both concatenates
            schema = ds.dataset(self.paths, format="parquet").schema
            table = table.cast(
                pa.schema([schema.field(n) if n in schema.names else table.schema.field(n) for n in table.column_names])
            )
        return table

    @property
    def paths(self) -> str | list[str]:
        return [str(f) for f in self.files] if self.files else str(self.path)

    @classmethod
    def open(cls, path: str | Path, format: str | None = None) -> Source:
        """The dataset at `path`; its format from `format` or the file's extension."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"the dataset {path} does not exist; check the path.")
        if format is None:
            if path.is_dir():
                format = "parquet"
            else:
                format = FORMATS.get(path.suffix.lower())
                if format is None:
                    raise DataError(
                        f"cannot tell the format of {path} from its extension {path.suffix!r}; name it "
                        f"{', '.join(FORMATS)}, or pass --format csv, jsonl or parquet."
                    )
        if format not in set(FORMATS.values()):
            raise DataError(f"format {format!r} is not one of csv, jsonl, parquet.")
        columns: tuple[str, ...] = ()
        if format == "csv":
            _pyarrow()
            import pyarrow.csv as csv

            try:
                with csv.open_csv(path) as reader:
                    columns = tuple(reader.schema.names)
            except Exception as err:
                raise DataError(f"cannot read the CSV header of {path}: {err}") from None
        return cls(path, format, columns)

    def csv_parse_options(self) -> Any:
        import pyarrow.csv as csv

        # A quoted field may hold a newline; without this the reader fails on one that spans
        # two of its blocks ("got out of sync with chunker").
        return csv.ParseOptions(newlines_in_values=True)

    def csv_convert_options(self) -> Any:
        import pyarrow as pa
        import pyarrow.csv as csv

        return csv.ConvertOptions(column_types={name: pa.string() for name in self.columns}, strings_can_be_null=True)

    def batches(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """The rows in order, `size` at a time (the last batch may be shorter)."""
        for chunk in self.chunks(size):
            yield chunk.rows()

    def chunks(self, size: int) -> Iterator[Chunk]:
        """The same batches as `batches`, still as read: Arrow tables or JSON Lines text. A
        chunk pickles small, so a worker process turns it into rows, not the reading one."""
        if self.format == "jsonl":
            with self.path.open("rb") as fh:
                yield from jsonl_chunks(fh, size)
            return
        yield from table_chunks(self._tables(), size)

    def _tables(self) -> Iterator[Any]:
        _pyarrow()
        if self.format == "csv":
            import pyarrow.csv as csv

            with csv.open_csv(
                self.path, parse_options=self.csv_parse_options(), convert_options=self.csv_convert_options()
            ) as reader:
                yield from reader
        else:
            import pyarrow.dataset as ds

            columns = list(self.select) if self.select is not None else None
            if self.files or self.tail is None:
                yield from ds.dataset(self.paths, format="parquet").to_batches(columns=columns)
            if self.tail is not None:
                yield from self.tail_table().to_batches()


class Chunk:
    """One batch as read: an Arrow table (CSV, Parquet) or JSON Lines' lines; `rows()` parses it.

    It pickles as Arrow's IPC stream of its own rows: a pickled slice of a table would carry
    the whole table's buffers."""

    __slots__ = ("lines", "table")

    def __init__(self, table: Any = None, lines: list[bytes] | None = None) -> None:
        self.table = table
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines) if self.lines is not None else int(self.table.num_rows)

    def rows(self) -> list[dict[str, Any]]:
        if self.lines is not None:
            return [parse_line(line) for line in self.lines]
        return rows_of(self.table)

    def __getstate__(self) -> tuple[Any, list[bytes] | None]:
        if self.table is None:
            return None, self.lines
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        return sink.getvalue(), None

    def __setstate__(self, state: tuple[Any, list[bytes] | None]) -> None:
        blob, self.lines = state
        self.table = None
        if blob is not None:
            import pyarrow as pa

            self.table = pa.ipc.open_stream(blob).read_all()


def table_chunks(batches: Iterable[Any], size: int) -> Iterator[Chunk]:
    """Arrow record batches as chunks of `size` rows (the last may be shorter)."""
    import pyarrow as pa

    buffer: list[Any] = []
    held = 0
    for batch in batches:
        buffer.append(batch)
        held += batch.num_rows
        if held < size:
            continue
        table = pa.Table.from_batches(buffer)
        start = 0
        while held - start >= size:
            yield Chunk(table.slice(start, size))
            start += size
        buffer = table.slice(start).to_batches()
        held -= start
    if held:
        yield Chunk(pa.Table.from_batches(buffer))


def jsonl_chunks(fh: BinaryIO, size: int, stop: int | None = None) -> Iterator[Chunk]:
    """The JSON Lines rows of an open file from where it stands, `size` lines at a time, blank
    lines left out; with `stop`, only the lines that start before that byte."""
    lines: list[bytes] = []
    at = fh.tell()
    for line in fh:
        if stop is not None:
            if at >= stop:
                break
            at += len(line)
        if not line.strip():
            continue
        lines.append(line)
        if len(lines) == size:
            yield Chunk(lines=lines)
            lines = []
    if lines:
        yield Chunk(lines=lines)


def parse_line(line: bytes | str) -> Any:
    """One JSON Lines row: the parsed value, or a row holding the parser's complaint."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as err:
        return {NOT_JSON: f"the line is not JSON ({err}): {line[:80]!r}"}


def rows_of(table: Any) -> list[dict[str, Any]]:
    """A CSV or Parquet batch as dicts, leaving out null cells (a missing field)."""
    names = table.column_names
    columns = [column.to_pylist() for column in table.columns]
    if any(column.null_count for column in table.columns):
        return [
            {k: v for k, v in zip(names, values, strict=True) if v is not None} for values in zip(*columns, strict=True)
        ]
    if len(names) == 1:  # the usual dataset of texts: no tuple per row
        name = names[0]
        return [{name: value} for value in columns[0]]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
