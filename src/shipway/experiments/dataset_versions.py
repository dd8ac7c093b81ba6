"""Dataset versions: what the dataset step wrote, hashed, described and registered.

A dataset is a folder with one file per split (`train.csv`, `valid.jsonl`, `test.csv`...;
CSV with a header, or JSON lines) and any other files (a label list). Its content version
is the SHA-256 of each split's rows, keyed by the split's name: the same rows in the same
order give the same version, whatever the folder, the file name's suffix case or the
machine (line endings are normalised). Row order is part of the version on purpose: an
order-sensitive learner (SGD, early stopping on a stream) trained on reordered rows learns
another model, so a reproduction needs the order too; `diff` tells a pure reordering apart.

Hashing reads each file once in 1 MiB chunks (over 1 GB/s of SHA-256 on one core); the
description (rows, label counts) reads the splits once more: lines without a quote are split at
their commas, the others (and any file whose records span lines) parsed by the csv module.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter, not_
from pathlib import Path, PurePosixPath
from typing import Any

from shipway.errors import DataError
from shipway.experiments.split_writer import HANDOVER, handed_over
from shipway.store.datasets import DatasetRecord
from shipway.store.objects import CHUNK, ObjectStore

__all__ = [
    "FORMATS",
    "ROLES",
    "DatasetDiff",
    "content_version",
    "describe",
    "diff_datasets",
    "materialize",
    "read_rows",
    "register_folder",
    "split_files",
    "split_for",
]

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# The names a split may have for each role a task gives it.
ROLES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "valid": ("valid", "validation", "val", "dev"),
    "test": ("test", "testing"),
}
VERSION_CHARS = 16
# Split files at least this large have their labels counted by pyarrow when it is installed;
# below it, importing pyarrow costs more than it saves.
ARROW_BYTES = 8 << 20


def split_files(folder: Path) -> dict[str, Path]:
    """The split files of a dataset folder by split name (the file name without its suffix)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"the dataset folder {str(folder)!r} does not exist; build the dataset first with "
            "`shipway data build` (it runs the `data.command` setting), or set `data.dir`"
        )
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in FORMATS:
            split = path.stem
            if split in found:
                raise DataError(
                    f"the dataset folder {str(folder)!r} has two files for the split {split!r} "
                    f"({found[split].name} and {path.name}); keep one"
                )
            found[split] = path
    if not found:
        raise DataError(
            f"the dataset folder {str(folder)!r} has no split files; write one file per split "
            f"(train.csv, valid.csv, test.csv; or .jsonl) from the dataset step"
        )
    return found


def split_for(splits: dict[str, Any], role: str) -> str | None:
    """The split name among `splits` that plays `role` (train, valid, test), if any."""
    return next((name for name in ROLES[role] if name in splits), None)


def canonical_digest(path: Path) -> str:
    """SHA-256 of a file's bytes with CRLF line endings read as LF."""
    digest = hashlib.sha256()
    carry = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            if carry:
                chunk, carry = carry + chunk, b""
            if b"\r" in chunk:
                if chunk.endswith(b"\r"):
                    chunk, carry = chunk[:-1], b"\r"
                chunk = chunk.replace(b"\r\n", b"\n")
            digest.update(chunk)
    digest.update(carry)
    return digest.hexdigest()


def _canonical(data: bytes) -> str:
    """`canonical_digest` of bytes in memory."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def content_version(folder: Path) -> str:
    """The content version of the dataset in `folder` (16 hex characters)."""
    return _version({split: (path, canonical_digest(path)) for split, path in split_files(folder).items()})


def _version(digests: dict[str, tuple[Path, str]]) -> str:
    """The version from each split's file and canonical digest."""
    digest = hashlib.sha256()
    for split, (path, canonical) in sorted(digests.items()):
        kind = FORMATS[path.suffix.lower()]
        digest.update(f"{split}\0{kind}\0{canonical}\n".encode())
    return digest.hexdigest()[:VERSION_CHARS]


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


def describe(folder: Path, target: str | None) -> tuple[dict[str, int], dict[str, dict[str, int]], list[str]]:
    """Rows per split, label counts per split (if `target` is a column) and the columns."""
    rows: dict[str, int] = {}
    labels: dict[str, dict[str, int]] = {}
    columns: list[str] = []
    for split, path in split_files(folder).items():
        header, rows[split], counts = _describe_split(path, target)
        columns = columns or header
        if counts:
            labels[split] = dict(sorted(counts.items()))
    return rows, labels, columns


def _describe_split(path: Path, target: str | None, data: bytes | None = None) -> tuple[list[str], int, Counter[str]]:
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


def register_folder(
    folder: Path,
    *,
    name: str,
    target: str | None,
    objects: ObjectStore,
    schema: dict[str, str] | None = None,
    code_commit: str | None = None,
    command: str | None = None,
    meta: dict[str, Any] | None = None,
) -> DatasetRecord:
    """Hash, describe and store the dataset in `folder`; the record to register.

    Every file of the folder (splits and others) is copied into the artifact folder, so that
    the version can be rebuilt anywhere (`materialize`). Each file is read once: a split under
    `ARROW_BYTES` is read whole, hashed, described from those bytes (or from what `write_split`
    handed over for exactly those bytes) and stored after the checks; a larger one is hashed while
    it is copied, before them."""
    folder = Path(folder)
    splits = split_files(folder)
    handover = handed_over(folder)
    rows: dict[str, int] = {}
    labels: dict[str, dict[str, int]] = {}
    columns: list[str] = []
    files: dict[str, dict[str, Any]] = {}
    canonical: dict[str, tuple[Path, str]] = {}
    held: dict[Path, bytes] = {}
    for split, path in splits.items():
        data: bytes | None = None
        if path.stat().st_size < ARROW_BYTES:
            data = held[path] = path.read_bytes()
            digest, size = hashlib.sha256(data).hexdigest(), len(data)
            crlf = b"\r" in data
        else:
            carriage = [False]

            def seen(chunk: memoryview, carriage: list[bool] = carriage) -> None:
                carriage[0] = carriage[0] or b"\r" in bytes(chunk)

            # One read: the copy's SHA-256 is the canonical digest unless the file has a CR.
            digest, size = objects.put(path, observe=seen)
            crlf = carriage[0]
        files[path.relative_to(folder).as_posix()] = {"digest": digest, "size": size}
        given = handover.get(path.name)
        if given is not None and given["digest"] == digest and (target is None or given["target"] == target):
            header, rows[split] = list(given["columns"]), given["rows"]
            counts = Counter(given["labels"] if target is not None else {})
        else:
            header, rows[split], counts = _describe_split(path, target, data)
        if crlf:
            digest = _canonical(data) if data is not None else canonical_digest(path)
        canonical[split] = (path, digest)
        columns = columns or header
        if counts:
            labels[split] = dict(sorted(counts.items()))
    if target is not None and not labels:
        raise DataError(
            f"the dataset in {str(folder)!r} has no column {target!r} (the `data.target` setting); "
            f"its columns are {', '.join(columns) or '(none)'}: set data.target to the label column"
        )
    missing = [f for f in (schema or {}) if f not in columns]
    if missing:
        raise DataError(
            f"the dataset in {str(folder)!r} lacks the service's input field(s) {missing}; its columns are "
            f"{', '.join(columns)}: the dataset step must write a column per input field of the service"
        )
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if path in held:
            objects.put_bytes(held[path])
        elif relative not in files and relative != HANDOVER:
            digest, size = objects.put(path)
            files[relative] = {"digest": digest, "size": size}
    return DatasetRecord(
        name=name,
        version=_version(canonical),
        rows=rows,
        schema=dict(schema or {c: "str" for c in columns if c != target}),
        labels=labels,
        files=dict(sorted(files.items(), key=lambda item: PurePosixPath(item[0]))),
        target=target,
        code_commit=code_commit,
        command=command,
        meta={"columns": columns, **(meta or {})},
    )


def materialize(dataset: DatasetRecord, objects: ObjectStore, folder: Path) -> Path:
    """Write the dataset's files into `folder` from the artifact folder (its content checked)."""
    folder = Path(folder)
    for relative, info in dataset.files.items():
        objects.copy_to(info["digest"], folder / relative)
    found = content_version(folder)
    if found != dataset.version:
        raise DataError(
            f"the files of dataset {dataset.name} version {dataset.version} rebuilt in {str(folder)!r} have "
            f"version {found}; the folder held other split files: empty it and try again"
        )
    return folder


@dataclass
class SplitDiff:
    """How one split changed: rows (as whole rows) added and removed, labels changed."""

    added: int = 0
    removed: int = 0
    relabelled: int = 0
    reordered: bool = False
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class DatasetDiff:
    """What changed from dataset version `a` to `b`."""

    a: str
    b: str
    splits: dict[str, SplitDiff] = field(default_factory=dict)
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    labels: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    schema: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "splits": {k: vars(v) for k, v in self.splits.items()},
            "rows": {k: list(v) for k, v in self.rows.items()},
            "labels": {s: {k: list(v) for k, v in c.items()} for s, c in self.labels.items()},
            "schema": {k: list(v) for k, v in self.schema.items()},
        }


def diff_datasets(a: DatasetRecord, b: DatasetRecord, objects: ObjectStore, examples: int = 3) -> DatasetDiff:
    """Rows added, removed and relabelled per split (a row is its input fields; a changed target
    is a relabel), and the changes of row counts, label distribution and schema."""
    out = DatasetDiff(a.version, b.version)
    for split in sorted(set(a.rows) | set(b.rows)):
        before, after = a.rows.get(split, 0), b.rows.get(split, 0)
        if before != after:
            out.rows[split] = (before, after)
        la, lb = a.labels.get(split, {}), b.labels.get(split, {})
        changed = {k: (la.get(k, 0), lb.get(k, 0)) for k in sorted(set(la) | set(lb)) if la.get(k, 0) != lb.get(k, 0)}
        if changed:
            out.labels[split] = changed
        out.splits[split] = _split_diff(
            _split_rows(a, split, objects), _split_rows(b, split, objects), a.target or b.target, examples
        )
    for key in sorted(set(a.schema) | set(b.schema)):
        if a.schema.get(key) != b.schema.get(key):
            out.schema[key] = (a.schema.get(key), b.schema.get(key))
    return out


def _split_rows(dataset: DatasetRecord, split: str, objects: ObjectStore) -> list[dict[str, Any]]:
    for relative, info in dataset.files.items():
        path = Path(relative)
        if path.parent == Path(".") and path.stem == split and path.suffix.lower() in FORMATS:
            text = objects.get_bytes(info["digest"]).decode("utf-8")
            if path.suffix.lower() == ".csv":
                return list(csv.DictReader(io.StringIO(text, newline="")))
            return [json.loads(line) for line in text.splitlines() if line.strip()]
    return []


def _split_diff(a: list[dict[str, Any]], b: list[dict[str, Any]], target: str | None, examples: int) -> SplitDiff:
    def key(row: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in row.items() if k != target}, sort_keys=True, default=str)

    def label(row: dict[str, Any]) -> Any:
        return row.get(target) if target else None

    out = SplitDiff()
    before: dict[str, Counter[Any]] = {}
    for row in a:
        before.setdefault(key(row), Counter())[label(row)] += 1
    after: dict[str, Counter[Any]] = {}
    for row in b:
        after.setdefault(key(row), Counter())[label(row)] += 1
    for k in sorted(before.keys() | after.keys()):
        old, new = before.get(k, Counter()), after.get(k, Counter())
        if not old:
            out.added += new.total()
            _example(out, "added", k, None, new, examples)
        elif not new:
            out.removed += old.total()
            _example(out, "removed", k, old, None, examples)
        elif old != new:
            moved = min(old.total(), new.total()) - (old & new).total()
            out.relabelled += max(moved, 0)
            out.added += max(new.total() - old.total(), 0)
            out.removed += max(old.total() - new.total(), 0)
            if moved > 0:
                _example(out, "relabelled", k, old, new, examples)
    if not (out.added or out.removed or out.relabelled) and a != b:
        out.reordered = True
    return out


def _example(
    out: SplitDiff, kind: str, row: str, old: Counter[Any] | None, new: Counter[Any] | None, limit: int
) -> None:
    shown = out.examples.setdefault(kind, [])
    if len(shown) < limit:
        item: dict[str, Any] = {"row": json.loads(row)}
        if old is not None:
            item["before"] = sorted(map(str, old))
        if new is not None:
            item["after"] = sorted(map(str, new))
        shown.append(item)
