"""Build the BANKING77 dataset: clean the raw CSVs, split off validation, version the result.

This is the dataset step only; learning code lives in train.py and reads what this writes:

    build/dataset/train.csv, valid.csv, test.csv   columns text,category
    build/dataset/categories.json                  the label set
    build/dataset/manifest.json                    version, row counts, what was dropped
    build/dataset/.shipway-splits.json             rows and label counts handed to registration

The splits are written with shipway's `write_split`, which hands their row and label counts to
`shipway data build`, so registering does not read the rows again.

The version is shipway's content version of the splits written (docs/experiments.md), so two
builds of the same data share a version, any change to the data (or to the cleaning rules)
gives a new one, and it is the version `shipway data build` registers.

    python data.py [--src data] [--out build/dataset]     (or: shipway data build)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
from collections import Counter
from pathlib import Path

from shipway import write_split
from shipway.experiments.dataset_versions import content_version

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "valid", "test")
VALID_FRACTION = 0.1
SEED = 77
COLUMNS = ("text", "category")


class DatasetError(ValueError):
    """The raw data cannot be built into a dataset; the message says where and why."""


Row = tuple[str, str]


def normalise(text: str) -> str:
    """Collapse runs of whitespace (including newlines inside quoted fields) to one space."""
    return " ".join(text.split())


def read_rows(path: Path, labels: set[str]) -> list[Row]:
    """Return (text, label) for each record, whitespace-normalised, labels checked."""
    rows: list[Row] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {missing}; found {reader.fieldnames}. "
                f"The first line must be the header 'text,category'."
            )
        # A quoted text may span lines, so a record starts one line after the previous ended.
        start = reader.line_num + 1
        for record in reader:
            text = normalise(record["text"] or "")
            label = (record["category"] or "").strip()
            if (text or label) and label not in labels:
                raise DatasetError(
                    f"{path} line {start}: unknown label {label!r}. Valid labels are the "
                    f"{len(labels)} in categories.json (e.g. {sorted(labels)[:3]}); fix the "
                    f"row or add the label to categories.json."
                )
            rows.append((text, label))
            start = reader.line_num + 1
    return rows


def clean(rows: list[Row]) -> tuple[list[Row], int, int]:
    """Drop empty texts and exact (text, label) duplicates; return kept rows and both counts."""
    kept: list[Row] = []
    seen: set[Row] = set()
    empty = duplicate = 0
    for text, label in rows:
        if not text:
            empty += 1
        elif (text, label) in seen:
            duplicate += 1
        else:
            seen.add((text, label))
            kept.append((text, label))
    return kept, empty, duplicate


def stratified_split(rows: list[Row], fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """Move `fraction` of each label's rows (at least one) to a validation split."""
    by_label: dict[str, list[int]] = {}
    for i, (_, label) in enumerate(rows):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(seed)
    valid: set[int] = set()
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        valid.update(indices[: max(1, round(len(indices) * fraction))])
    # Keep the source order inside each split so the files diff cleanly between builds.
    train = [row for i, row in enumerate(rows) if i not in valid]
    return train, [row for i, row in enumerate(rows) if i in valid]


def build_dataset(src: Path, out: Path, *, valid_fraction: float = VALID_FRACTION, seed: int = SEED) -> dict:
    """Build train/valid/test CSVs and manifest.json from `src` into `out`; return the manifest."""
    src, out = Path(src), Path(out)
    labels = json.loads((src / "categories.json").read_text(encoding="utf-8"))
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise DatasetError(
            f"{src / 'categories.json'}: expected a JSON list of label strings, got {type(labels).__name__}."
        )
    label_set = set(labels)

    train, train_empty, train_dups = clean(read_rows(src / "train.csv", label_set))
    test, test_empty, test_dups = clean(read_rows(src / "test.csv", label_set))
    # A text in both train and test inflates the test score; the test set stays as published.
    test_texts = {text for text, _ in test}
    leaked = sum(text in test_texts for text, _ in train)
    train = [row for row in train if row[0] not in test_texts]
    train, valid = stratified_split(train, valid_fraction, seed)

    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": train, "valid": valid, "test": test}
    files = {
        f"{name}.csv": write_split(out / f"{name}.csv", COLUMNS, splits[name], target="category") for name in SPLITS
    }
    categories = json.dumps(labels, indent=2).encode() + b"\n"
    (out / "categories.json").write_bytes(categories)
    files["categories.json"] = hashlib.sha256(categories).hexdigest()

    manifest = {
        "name": "banking77",
        "version": content_version(out),
        "source_files": {
            name: hashlib.sha256((src / name).read_bytes()).hexdigest()
            for name in ("train.csv", "test.csv", "categories.json")
        },
        "params": {"valid_fraction": valid_fraction, "seed": seed},
        "dropped": {
            "train": {"empty": train_empty, "duplicate": train_dups, "also_in_test": leaked},
            "test": {"empty": test_empty, "duplicate": test_dups},
        },
        "rows": {name: len(splits[name]) for name in SPLITS},
        "labels": {name: dict(sorted(Counter(label for _, label in splits[name]).items())) for name in SPLITS},
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=HERE / "data", help="raw data folder")
    parser.add_argument("--out", type=Path, default=HERE / "build" / "dataset")
    args = parser.parse_args(argv)
    try:
        manifest = build_dataset(args.src, args.out)
    except DatasetError as e:
        raise SystemExit(f"error: {e}") from None
    dropped = manifest["dropped"]
    print(f"dataset {manifest['version']} -> {args.out}")
    print(f"  rows: {manifest['rows']}")
    print(f"  dropped from train: {dropped['train']}")
    print(f"  dropped from test:  {dropped['test']}")


if __name__ == "__main__":
    main()
