"""A labelled dataset read from a file: which column is the label, which is text, which are features.

CSV (also .tsv and compressed .gz/.bz2/.xz/.zip), JSON Lines, a JSON array of records, and
Parquet when pyarrow is installed. Columns are inferred where the user does not name them:
the label from its name, the text from its name or its length, the features are the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.common.suggest import closest
from shipway.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["LABEL_NAMES", "TEXT_NAMES", "Dataset", "read_dataset", "read_table"]

# Tried in this order when --label is not given.
LABEL_NAMES = ("label", "labels", "intent", "category", "class", "target")
TEXT_NAMES = ("text", "utterance", "sentence", "message", "query", "content", "review", "comment")
# A string column whose values average at least this many words is free text, not a category.
TEXT_MIN_WORDS = 4.0
# A string column with more distinct values than this share of its rows is an identifier or
# free text: as a one-hot feature it would only let the model memorise rows.
ID_UNIQUE_SHARE = 0.5
COMPRESSION = (".gz", ".bz2", ".xz", ".zip", ".zst")
MISSING = "(missing)"


@dataclass(frozen=True)
class Dataset:
    """The rows to inspect. `frame` keeps the file's row numbers (0-based) as its index."""

    path: Path
    frame: pd.DataFrame
    label: str
    text: str | None
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        """The columns a model learns from, text first."""
        return [*([self.text] if self.text else []), *self.numeric, *self.categorical]

    @property
    def labels(self) -> np.ndarray:
        return self.frame[self.label].to_numpy(dtype=str)

    def inputs(self) -> Any:
        """What a model's fit and predict_proba get: the text alone as a 1-D array of strings (what a
        TfidfVectorizer pipeline expects), or else a DataFrame of the feature columns."""
        if self.text and not self.numeric and not self.categorical:
            return self.frame[self.text].to_numpy(dtype=object)
        return self.frame[self.features]

    def describe(self, row: int, order: Sequence[str] | None = None) -> str:
        """Row `row` (a file row number) as a user would recognise it: its text, or its features
        (in `order`, say the most informative first, as `informative_features` gives)."""
        record = self.frame.loc[row]
        if self.text:
            return str(record[self.text])
        return ", ".join(f"{c}={record[c]}" for c in (order or self.features))

    def informative_features(self, seed: int = 0) -> list[str]:
        """The feature columns, the most informative of the label first: by their mutual information
        with it (scikit-learn's estimator; categories as discrete codes), so that an example cut to a
        terminal's width shows the fields that matter, not the first ones in the file."""
        if not self.numeric and not self.categorical:
            return self.features
        from sklearn.feature_selection import mutual_info_classif

        pd = _pandas()
        columns = [*self.numeric, *self.categorical]
        x = pd.DataFrame(
            {
                **{c: pd.to_numeric(self.frame[c], errors="coerce").fillna(0.0) for c in self.numeric},
                **{c: pd.factorize(self.frame[c].astype(str))[0] for c in self.categorical},
            }
        )
        discrete = [False] * len(self.numeric) + [True] * len(self.categorical)
        scores = mutual_info_classif(x[columns].to_numpy(), self.labels, discrete_features=discrete, random_state=seed)
        ranked = sorted(zip(columns, scores, strict=True), key=lambda pair: -pair[1])
        return [*([self.text] if self.text else []), *(c for c, _ in ranked)]


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - the inspect extra installs it
        raise DataError(f"reading a dataset needs pandas ({err}); pip install 'shipway[inspect]'") from err
    return pd


def read_table(path: Path) -> pd.DataFrame:
    """The file's rows as a DataFrame, by its suffix; a clear error for what cannot be read."""
    pd = _pandas()
    path = Path(path)
    if not path.exists():
        raise DataError(f"no dataset at {str(path)!r}; pass the path of a .csv, .jsonl or .parquet file")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a folder; pass a dataset file in it (.csv, .jsonl or .parquet)")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    try:
        if kind in (".csv", ".txt"):
            return pd.read_csv(path)
        if kind == ".tsv":
            return pd.read_csv(path, sep="\t")
        if kind in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if kind == ".json":
            return _read_json(path)
        if kind in (".parquet", ".pq"):
            return _read_parquet(path)
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise DataError(f"cannot read {str(path)!r} as {kind[1:]} ({type(err).__name__}: {err})") from err
    raise DataError(
        f"cannot tell the format of {str(path)!r} from its suffix {kind or '(none)'!r}; "
        f"use .csv, .tsv, .jsonl (JSON Lines), .json (an array of records) or .parquet"
    )


def _read_json(path: Path) -> pd.DataFrame:
    pd = _pandas()
    try:
        return pd.read_json(path, orient="records")
    except ValueError:
        # Many .json files are JSON Lines in fact.
        return pd.read_json(path, lines=True)


def _read_parquet(path: Path) -> pd.DataFrame:
    pd = _pandas()
    try:
        return pd.read_parquet(path)
    except ImportError as err:
        raise DataError(
            f"reading {str(path)!r} needs pyarrow ({err}); pip install pyarrow, or save the data as CSV or JSON Lines"
        ) from err


def _column(name: str, columns: Sequence[str], flag: str) -> str:
    if name in columns:
        return name
    found = closest(name, columns)
    hint = f" (did you mean {found!r}?)" if found else ""
    raise DataError(f"{flag} {name!r}: no such column{hint}; the columns are {list(columns)}")


def _is_string(series: pd.Series) -> bool:
    pd = _pandas()
    return bool(pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series))


def _mean_words(series: pd.Series) -> float:
    sample = series.dropna().astype(str).head(2000)
    return float(sample.str.split().str.len().mean()) if len(sample) else 0.0


def _infer_label(columns: Sequence[str], notes: list[str]) -> str:
    lowered = {str(c).lower(): str(c) for c in columns}
    found = [lowered[name] for name in LABEL_NAMES if name in lowered]
    if not found:
        raise DataError(
            f"no label column: none of the columns {list(columns)} is named "
            f"{'/'.join(LABEL_NAMES)}; pass --label COLUMN"
        )
    if len(found) > 1:
        notes.append(f"using {found[0]!r} as the label (also found {found[1:]}); pass --label to choose another")
    return found[0]


def _infer_text(frame: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    strings = [c for c in candidates if _is_string(frame[c])]
    lowered = {str(c).lower(): c for c in strings}
    for name in TEXT_NAMES:
        if name in lowered:
            return str(lowered[name])
    words = {c: _mean_words(frame[c]) for c in strings}
    longest = max(words, key=lambda c: words[c], default=None)
    return str(longest) if longest is not None and words[longest] >= TEXT_MIN_WORDS else None


def read_dataset(
    path: Path,
    *,
    label: str | None = None,
    text: str | None = None,
    features: Sequence[str] | None = None,
) -> Dataset:
    """Read `path` and decide the label, text and feature columns (the ones given, or inferred)."""
    pd = _pandas()
    frame = read_table(path)
    notes: list[str] = []
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"{str(path)!r} has no rows; a labelled dataset needs rows with a label column")
    frame.columns = [str(c) for c in frame.columns]
    columns = list(frame.columns)
    label = _column(label, columns, "--label") if label else _infer_label(columns, notes)

    missing_label = frame[label].isna()
    if missing_label.any():
        notes.append(f"{int(missing_label.sum())} rows with no {label!r} were left out")
        frame = frame[~missing_label]
    if frame.empty:
        raise DataError(f"every row of {str(path)!r} has an empty {label!r}; pass the label column with --label")
    if pd.api.types.is_float_dtype(frame[label]) and (frame[label] % 1 == 0).all():
        frame[label] = frame[label].astype("int64")  # 1.0 read from a CSV with gaps is the label 1
    frame[label] = frame[label].astype(str)

    rest = [c for c in columns if c != label]
    if text:
        text = _column(text, columns, "--text")
        if text == label:
            raise DataError(f"--text {text!r} is also the label column; pass another column as --text")
    elif features is None:
        text = _infer_text(frame, rest)
    if features is not None:
        chosen = [_column(c, columns, "--features") for c in features]
        if label in chosen:
            raise DataError(f"--features includes the label column {label!r}; a model cannot learn from its answer")
    else:
        chosen = []
        for c in rest:
            if c == text:
                continue
            series = frame[c]
            if _is_string(series) and series.nunique() > ID_UNIQUE_SHARE * len(series) and len(series) > 20:
                notes.append(f"column {c!r} left out: nearly every row has its own value (an id?); pass --features")
                continue
            chosen.append(c)
    chosen = [c for c in chosen if c != text]
    numeric = tuple(
        c for c in chosen if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    )
    categorical = tuple(c for c in chosen if c not in numeric)
    if text is None and not chosen:
        raise DataError(
            f"no feature columns besides the label {label!r} in {columns}; pass --text COLUMN or --features A,B"
        )

    frame = frame.copy()
    if text:
        frame[text] = frame[text].fillna("").astype(str)
    for c in categorical:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), MISSING).astype(str)
    return Dataset(Path(path), frame, label, text, numeric, categorical, notes)
