"""Dataset versions: what the dataset step wrote, hashed, described and registered.

A dataset is a folder with one file per split (`train.csv`, `valid.jsonl`, `test.csv`...;
CSV with a header, or JSON lines) and any other files (a label list). Its content version
is the SHA-256 of each split's rows, keyed by the split's name: the same rows in the same
order give the same version, whatever the folder, the file name's suffix case or the
machine (line endings are normalised). Row order is part of the version on purpose: an
order-sensitive learner (SGD, early stopping on a stream) trained on reordered rows learns
another model, so a reproduction needs the order too; `diff` tells a pure reordering apart.

Registering reads each file once: a split under `ARROW_BYTES` whole (hashed, then described
from those bytes: lines without a quote split at their commas, the others, and any file whose
records span lines, parsed by the csv module), a larger one hashed while copied in 1 MiB chunks
(over 1 GB/s of SHA-256 on one core) and counted by pyarrow. A split written by `write_split`
is not counted at all: its writer handed its description over, for exactly its bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from shipway.errors import DataError
from shipway.experiments import split_descriptions
from shipway.experiments.split_descriptions import FORMATS, HANDOVER, describe_split, handed_over, read_rows
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

# The names a split may have for each role a task gives it.
ROLES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "valid": ("valid", "validation", "val", "dev"),
    "test": ("test", "testing"),
}
VERSION_CHARS = 16


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


def describe(folder: Path, target: str | None) -> tuple[dict[str, int], dict[str, dict[str, int]], list[str]]:
    """Rows per split, label counts per split (if `target` is a column) and the columns."""
    rows: dict[str, int] = {}
    labels: dict[str, dict[str, int]] = {}
    columns: list[str] = []
    for split, path in split_files(folder).items():
        header, rows[split], counts = describe_split(path, target)
        columns = columns or header
        if counts:
            labels[split] = dict(sorted(counts.items()))
    return rows, labels, columns


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
        if path.stat().st_size < split_descriptions.ARROW_BYTES:
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
            header, rows[split], counts = describe_split(path, target, data)
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
