"""Writing a split through shipway, so that registering it need not read it again.

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
from collections import Counter
from collections.abc import Iterable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from shipway.errors import DataError

__all__ = ["HANDOVER", "Handover", "handed_over", "write_split"]

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
