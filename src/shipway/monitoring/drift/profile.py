"""The reference profile: what drift detection keeps of the training inputs and outputs.

Built once at training time and saved beside the model as `profile.json`; live windows are
compared with it (drift.py). Per feature it keeps only what the statistics need:

- numeric: a sorted random sample of at most `sample_size` values (all of them when there are
  fewer), exact summary statistics, decile cuts with their counts (PSI), and a histogram;
- categorical: the count of every category;
- text: the same as numeric for the length in characters, a vocabulary with its expected
  out-of-vocabulary rate, and a sample of texts for the domain classifier.

Kinds are inferred (see `infer_kind`) and can be overridden per feature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shipway.errors import DriftError
from shipway.monitoring.drift._columns import column as column_at
from shipway.monitoring.drift._columns import count_categories, flatten_items, path_name, to_float, to_texts
from shipway.monitoring.drift._reference import NumericReference, TextReference

__all__ = ["FILENAME", "FORMAT", "KINDS", "VERSION", "Feature", "Profile", "infer_kind"]

FILENAME = "profile.json"
FORMAT = "shipway.drift-profile"
VERSION = 1
KINDS = ("numeric", "categorical", "text")

# A string column is text, not categorical, when its values are long or nearly all different:
# a mean length of 32 characters or more (a sentence, not a code or a name), or more than
# 100 distinct values making up at least half of the values (free text, not a closed set).
TEXT_MIN_MEAN_LENGTH = 32
TEXT_MIN_DISTINCT = 100
TEXT_MIN_DISTINCT_SHARE = 0.5


def infer_kind(values: Sequence[Any]) -> tuple[str | None, str]:
    """The kind of a column from its present values, and why; None when it has no values."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "fiu":
            return ("numeric", "numbers") if not np.isnan(values.astype(np.float64)).all() else (None, "no values")
        values = values.tolist()
    present = [v for v in values if v is not None and v == v]  # v == v drops NaN
    if not present:
        return None, "no values"
    types = set(map(type, present))
    if types <= {int, float}:
        return "numeric", "numbers"
    if types == {str}:
        mean_length = sum(map(len, present)) / len(present)
        distinct = len(set(present))
        if mean_length >= TEXT_MIN_MEAN_LENGTH:
            return "text", f"strings of mean length {mean_length:.0f} >= {TEXT_MIN_MEAN_LENGTH}"
        if distinct > TEXT_MIN_DISTINCT and distinct >= TEXT_MIN_DISTINCT_SHARE * len(present):
            return "text", f"{distinct} distinct strings in {len(present)} values"
        return "categorical", f"{distinct} distinct strings of mean length {mean_length:.0f}"
    return "categorical", "values of types " + ", ".join(sorted(t.__name__ for t in types))


@dataclass(slots=True)
class Feature:
    """One profiled input or output field."""

    name: str  # `amount`, `customer.age`, `output.intent`
    role: str  # "input" or "output"
    path: tuple[str, ...]  # where the value sits in the item
    kind: str
    reason: str  # why this kind: inferred from the values, or "set by kinds="
    n_rows: int
    n_missing: int
    numeric: NumericReference | None = None  # numeric: the values; text: the lengths
    categories: dict[str, int] | None = None
    text: TextReference | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "path": list(self.path),
            "kind": self.kind,
            "reason": self.reason,
            "n_rows": self.n_rows,
            "n_missing": self.n_missing,
        }
        if self.numeric is not None:
            out["numeric"] = self.numeric.to_json()
        if self.categories is not None:
            out["categories"] = self.categories
        if self.text is not None:
            out["text"] = self.text.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Feature:
        """Raises ValueError (or KeyError, TypeError) for a damaged entry."""
        kind = data["kind"]
        needs = {"numeric": "numeric", "categorical": "categories", "text": "text"}.get(kind)
        if needs is None or needs not in data:
            raise ValueError(f"feature {data.get('name')!r} of kind {kind!r} lacks its reference data")
        return cls(
            name=data["name"],
            role=data["role"],
            path=tuple(data["path"]),
            kind=data["kind"],
            reason=data["reason"],
            n_rows=int(data["n_rows"]),
            n_missing=int(data["n_missing"]),
            numeric=NumericReference.from_json(data["numeric"]) if "numeric" in data else None,
            categories={str(k): int(v) for k, v in data["categories"].items()} if "categories" in data else None,
            text=TextReference.from_json(data["text"]) if "text" in data else None,
        )


@dataclass(slots=True)
class Profile:
    """The reference for drift detection. Build it with `Profile.build`, keep it with `save`."""

    features: list[Feature]
    n_rows: int
    created_at: str
    meta: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # field name -> why it is not profiled
    n_output_rows: int = 0

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise DriftError(
            f"the profile has no feature {name!r}; it has {', '.join(f.name for f in self.features) or 'none'}."
        )

    @classmethod
    def build(
        cls,
        inputs: Sequence[Any] | Mapping[str, Sequence[Any]],
        outputs: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
        *,
        kinds: Mapping[str, str] | None = None,
        sample_size: int = 20_000,
        text_sample_size: int = 1_000,
        vocabulary_size: int = 50_000,
        seed: int = 0,
        meta: Mapping[str, Any] | None = None,
    ) -> Profile:
        """Profile the training inputs and the model's outputs (best on a validation split).

        `inputs` and `outputs` are the service's items (a sequence of JSON objects, or of bare
        values) or columns (a mapping of name to values); the two may hold different rows.
        Output features are named `output.<field>`.
        `kinds` overrides the inferred kind of a feature by name: numeric, categorical, text or skip.
        """
        if sample_size < 1 or text_sample_size < 1:
            raise DriftError(
                f"sample_size and text_sample_size must be at least 1, got {sample_size} and {text_sample_size}."
            )
        rng = np.random.default_rng(seed)
        overrides = dict(kinds or {})
        n_rows, columns, skipped = _columns(inputs, "input")
        n_output_rows = 0
        if outputs is not None:
            # Outputs may come from other rows than the inputs: answers on training rows are
            # overconfident, so the model's answers on a validation split make a better reference.
            n_output_rows, out_columns, out_skipped = _columns(outputs, "output")
            columns += out_columns
            skipped.update(out_skipped)
        if n_rows == 0:
            raise DriftError("cannot build a drift profile from no rows; pass the training inputs.")
        unknown = set(overrides) - {name for name, *_ in columns}
        if unknown:
            names = ", ".join(name for name, *_ in columns)
            raise DriftError(f"kinds= names unknown features {sorted(unknown)}; the features are: {names}.")
        features = []
        for name, role, path, values in columns:
            kind, reason = infer_kind(values)
            if name in overrides:
                kind, reason = overrides[name], "set by kinds="
                if kind == "skip":
                    skipped[name] = reason
                    continue
                if kind not in KINDS:
                    raise DriftError(f"kinds[{name!r}] is {kind!r}; it must be one of {', '.join(KINDS)} or skip.")
            if kind is None:
                skipped[name] = reason
                continue
            features.append(
                _profile_feature(
                    name, role, path, kind, reason, values, rng, sample_size, text_sample_size, vocabulary_size
                )
            )
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(features, n_rows, created, dict(meta or {}), skipped, n_output_rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created_at": self.created_at,
            "n_rows": self.n_rows,
            "n_output_rows": self.n_output_rows,
            "meta": self.meta,
            "skipped": self.skipped,
            "features": [f.to_json() for f in self.features],
        }

    def save(self, artifacts: Path | str) -> Path:
        """Write `profile.json` into the `artifacts` folder (beside the model); return its path."""
        folder = Path(artifacts)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILENAME
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
        return path

    @classmethod
    def load(cls, path: Path | str) -> Profile:
        """Read a profile from a `profile.json` file or the artifacts folder holding one."""
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.is_file():
            raise DriftError(
                f"no drift profile at {path}. Training writes it: Profile.build(inputs, outputs).save(artifacts) "
                "(see docs/drift.md); retrain, or pass the folder that holds profile.json."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DriftError(f"{path} is not valid JSON ({err}); rebuild it by retraining.") from err
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DriftError(
                f"{path} is not a shipway drift profile (no 'format': {FORMAT!r}); rebuild it by retraining."
            )
        if data.get("version") != VERSION:
            raise DriftError(
                f"{path} is a drift profile of version {data.get('version')!r}, but this shipway reads version "
                f"{VERSION}; rebuild the profile by retraining, or use the shipway version that wrote it."
            )
        try:
            features = [Feature.from_json(f) for f in data["features"]]
            return cls(
                features,
                int(data["n_rows"]),
                str(data["created_at"]),
                dict(data["meta"]),
                dict(data["skipped"]),
                int(data["n_output_rows"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise DriftError(
                f"{path} is a damaged drift profile ({type(err).__name__}: {err}); rebuild it by retraining."
            ) from err


def _columns(
    data: Sequence[Any] | Mapping[str, Sequence[Any]], role: str
) -> tuple[int, list[tuple[str, str, tuple[str, ...], Sequence[Any]]], dict[str, str]]:
    """(row count, [(feature name, role, path, values)], {skipped name: reason})."""
    if isinstance(data, Mapping):
        lengths = {name: len(values) for name, values in data.items()}
        if len(set(lengths.values())) > 1:
            raise DriftError(f"the {role} columns differ in length: {lengths}; pass one value per row in each.")
        n = next(iter(lengths.values()), 0)
        return n, [(path_name((name,), role), role, (name,), values) for name, values in data.items()], {}
    items = list(data)
    paths, lists = flatten_items(items)
    columns: list[tuple[str, str, tuple[str, ...], Sequence[Any]]] = [
        (path_name(p, role), role, p, column_at(items, p)) for p in paths
    ]
    return len(items), columns, {path_name(p, role): "a list, which has no single value to compare" for p in lists}


def _profile_feature(
    name: str,
    role: str,
    path: tuple[str, ...],
    kind: str,
    reason: str,
    values: Sequence[Any],
    rng: np.random.Generator,
    sample_size: int,
    text_sample_size: int,
    vocabulary_size: int,
) -> Feature:
    feature = Feature(name, role, path, kind, reason, len(values), 0)
    if kind == "numeric":
        array, invalid = to_float(values)
        present = array[~np.isnan(array)]
        if len(present) == 0:
            raise DriftError(f"feature {name!r} is numeric but has no numbers (e.g. {values[0]!r}); set its kind.")
        feature.n_missing = len(values) - len(present)
        feature.numeric = NumericReference.build(present, sample_size, rng)
    elif kind == "categorical":
        feature.categories, feature.n_missing = count_categories(values)
    else:
        texts, missing, invalid = to_texts(values)
        if not texts:
            raise DriftError(f"feature {name!r} is text but has no strings (e.g. {values[0]!r}); set its kind.")
        feature.n_missing = missing + invalid
        feature.text = TextReference.build(texts, rng, sample_size, text_sample_size, vocabulary_size)
    return feature
