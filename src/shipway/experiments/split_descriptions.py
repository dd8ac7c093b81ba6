"""How a split is described (rows, columns, label counts): counted from its rows, or handed
over by the dataset step that wrote it.

Counting reads the file: lines without a quote split at their commas, the others (and any file
whose records span lines) parsed by the csv module, and files of `ARROW_BYTES` or more read by
pyarrow's CSV reader when it is installed.

A dataset step that writes its CSV splits with `write_split` hands over what registering
would otherwise count by reading every row: the rows, the columns and the label counts. They
go into one file beside the splits (`.shipway-splits.json`, never registered as a dataset
file) keyed by the split's file name, with the SHA-256 of the bytes they describe: registering
uses them only for a file whose bytes it hashed to that digest, so a file written or changed by
anything else is described from its rows, as it always is (docs/experiments.md).

    from shipway import write_split
    write_split("build/dataset/train.csv", ("text", "category"), rows, target="category")
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, repeat
from operator import itemgetter, not_
from pathlib import Path
from typing import Any

import orjson

from shipway.errors import DataError

__all__ = [
    "ARROW_BYTES",
    "FORMATS",
    "HANDOVER",
    "Handover",
    "describe_split",
    "handed_over",
    "read_rows",
    "write_split",
]

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Split files at least this large have their labels counted by pyarrow when it is installed;
# below it, importing pyarrow costs more than it saves.
ARROW_BYTES = 8 << 20

HANDOVER = ".shipway-splits.json"
_FORMAT = 1

# What a split's writer hands over: rows, columns, target and label counts (by label).
Handover = dict[str, Any]


def write_split(
    path: str | Path, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, target: str | None = None
) -> str:
    """Write `rows` under the header `columns` as the CSV split `path` (as `csv.writer` writes,
    LF line endings) and hand its description over to registration. Returns the file's SHA-256.

    `target` is the label column (the project's `data.target`) whose values are counted."""
    path = Path(path)
    header = [str(c) for c in columns]
    if path.suffix.lower() != ".csv":
        raise DataError(f"write_split writes CSV: {str(path)!r} does not end in .csv; name the split <split>.csv")
    if target is not None and target not in header:
        raise DataError(f"write_split: the target {target!r} is not among the columns {header}; pass one of them")
    table = rows if isinstance(rows, list) else list(rows)
    labels: dict[str, int] = {}
    if target is not None:
        pick = itemgetter(header.index(target))
        try:
            counts: Counter[Any] = Counter(map(pick, table))
        except IndexError:
            short = next(i for i, row in enumerate(table) if len(row) <= header.index(target))
            raise DataError(
                f"write_split {path.name}: row {short + 1} has {len(table[short])} values for the "
                f"{len(header)} columns {header}; give every row one value per column"
            ) from None
        if not all(type(label) is str for label in counts):
            # Count what the file holds: 1, 1.0 and True are one key for a Counter but three
            # labels in the file.
            counts = Counter(map(_written, map(pick, table)))
        labels = dict(sorted(counts.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(table)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    # csv.writer leaves a CR inside a value unquoted when lines end in LF, and a reader takes it
    # for a line break: such a file is described from what it reads back, as without write_split.
    _record(path, None if b"\r" in data else _entry(digest, len(table), header, target, labels))
    return digest


def _entry(digest: str, rows: int, columns: list[str], target: str | None, labels: dict[str, int]) -> Handover:
    return {"digest": digest, "rows": rows, "columns": columns, "target": target, "labels": labels}


def _written(value: Any) -> str:
    """A value as csv.writer writes it: None as "", anything else with str()."""
    return "" if value is None else str(value)


def _record(path: Path, handover: Handover | None) -> None:
    """Add, replace or (None) remove `path`'s entry in its folder's handover file."""
    file = path.parent / HANDOVER
    splits = _read(file)
    splits.pop(path.name, None)
    if handover is not None:
        splits[path.name] = handover
    file.write_bytes(orjson.dumps({"format": _FORMAT, "splits": splits}, option=orjson.OPT_SORT_KEYS))


def _read(file: Path) -> dict[str, Any]:
    """The entries of a handover file as written (unchecked); none if it is missing or unreadable."""
    try:
        document = orjson.loads(file.read_bytes())
    except (OSError, ValueError):
        return {}  # then every split is described from its rows
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        return {}
    splits = document.get("splits")
    return splits if isinstance(splits, dict) else {}


def _well_formed(entry: Any) -> bool:
    """Whether a handed-over entry has every field with its type (a hand-edited one may not)."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("digest"), str)
        and type(entry.get("rows")) is int
        and isinstance(entry.get("columns"), list)
        and all(isinstance(c, str) for c in entry["columns"])
        and (entry.get("target") is None or entry.get("target") in entry["columns"])
        and isinstance(entry.get("labels"), dict)
        and all(isinstance(k, str) and type(v) is int for k, v in entry["labels"].items())
    )


def handed_over(folder: Path) -> dict[str, Handover]:
    """The handed-over descriptions in `folder`, by split file name (each still to be matched
    against its file's digest by the caller)."""
    return {name: entry for name, entry in _read(Path(folder) / HANDOVER).items() if _well_formed(entry)}


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a split file as dicts (CSV values are strings)."""
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown split format {Path(path).suffix!r}; use one of {', '.join(FORMATS)}")
    with open(path, encoding="utf-8", newline="") as fh:
        if kind == "csv":
            yield from csv.DictReader(fh)
            return
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError as err:
                    raise DataError(f"{path}:{number}: not a JSON object ({err}); write one object per line") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
                yield row


def describe_split(path: Path, target: str | None, data: bytes | None = None) -> tuple[list[str], int, Counter[str]]:
    """A split's columns, rows and counts of its `target` column, from `data` (its bytes) if given."""
    if path.suffix.lower() == ".csv":
        return _count_csv(path, target, data)
    counts: Counter[str] = Counter()
    columns: list[str] = []
    n = 0
    for row in read_rows(path):
        columns = columns or list(row)
        n += 1
        if target is not None and target in row:
            counts[str(row[target])] += 1
    return columns, n, counts


def _count_csv(path: Path, target: str | None, data: bytes | None = None) -> tuple[list[str], int, Counter[str]]:
    """A CSV split's header, its number of rows and the counts of its `target` column."""
    if data is None and path.stat().st_size < ARROW_BYTES:
        data = path.read_bytes()
    text = None if data is None else data.decode("utf-8")
    # The header and the csv module's reading come from the file: a StringIO of the text would
    # copy it into 4 bytes a character first.
    with open(path, encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh), [])
    if target in header and text is None:
        found = _count_with_arrow(path, target)
        if found is not None:
            return header, found.total(), found
    elif target in header and text is not None:
        counted = _count_lines(text, header.index(target))
        if counted is not None:
            return header, counted.total(), counted
    counts: Counter[str] = Counter()
    with open(path, encoding="utf-8", newline="") as fh:
        # The csv reader's lists, not DictReader's dicts: the description reads every row.
        reader = csv.reader(fh)
        next(reader, None)
        if target not in header:
            return header, sum(1 for _ in reader), counts
        try:
            counts.update(map(itemgetter(header.index(target)), reader))
        except IndexError:
            raise DataError(
                f"{path} line {reader.line_num}: the row has fewer columns than the header "
                f"({len(header)}); fix the dataset step's CSV writing"
            ) from None
    return header, counts.total(), counts


def _count_lines(text: str, column: int) -> Counter[str] | None:
    """The counts of a column when every record of the CSV `text` is one line: lines without a
    quote split at their commas as the csv module would split them, the others go through the csv
    module, and None (count with the csv module) when a record spans lines or a row is short.
    About twice as fast as the csv module over every row (a quote is rare in most datasets)."""
    if "\r" in text:
        return None
    lines = text.split("\n")[1:]
    if lines and not lines[-1]:
        lines.pop()
    if "" in lines:
        return None  # the csv module says which row is empty
    quoted = list(map(str.__contains__, lines, repeat('"')))
    pick = itemgetter(column)
    try:
        counts = Counter(map(pick, map(str.split, compress(lines, map(not_, quoted)), repeat(","))))
        tricky = list(compress(lines, quoted))
        if tricky:
            records = list(csv.reader(tricky))
            if len(records) != len(tricky):
                return None  # a quoted value holds a line break
            counts.update(map(pick, records))
    except IndexError:
        return None
    return counts


def _count_with_arrow(path: Path, target: str) -> Counter[str] | None:
    """The label counts read by pyarrow's CSV reader (about 6x faster than the csv module on one
    core), when pyarrow is installed; None if it is not, or cannot read the file the same way."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pa_compute
        import pyarrow.csv as pa_csv
    except ImportError:
        return None
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(include_columns=[target], column_types={target: pa.string()}),
        )
    except (pa.ArrowException, ValueError):
        return None  # the csv module reads it, or says where it is broken
    column = table.column(target)
    if column.null_count:
        return None
    return Counter({str(v["values"]): int(v["counts"]) for v in pa_compute.value_counts(column).to_pylist()})
