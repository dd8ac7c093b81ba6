"""Out-of-sample predicted probabilities by stratified K-fold cross-validation.

Confident learning needs, for every row, the probabilities a model gives when that row was
not in its training data. The model is a default chosen by column types, or the user's own:
`--model module:factory` (or `path/to/file.py:factory`), where `factory()` returns an unfitted
scikit-learn-compatible estimator with `fit(X, y)` and `predict_proba(X)`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np

    from shipway.inspection.labelled_data import Dataset

__all__ = ["ModelFactory", "default_model", "load_factory", "out_of_sample_probabilities"]

ModelFactory = Callable[[], Any]

# The banking77 example's features (word 1-2-grams, sublinear TF). Cross-validated on its 10,003
# rows, C=5, 10 and 20 found label issues with precision and recall within 0.05 of each other;
# C=20 took twice as long as C=5. The saga solver gave the same results as lbfgs three times faster.
TEXT_NGRAMS = (1, 2)
TEXT_C = 10.0


def default_model(dataset: Dataset) -> tuple[ModelFactory, str]:
    """A model for the dataset's columns, and its description for the report.

    Text (with or without other columns): TF-IDF word 1-2-grams, one-hot categories and scaled
    numbers, into a logistic regression. Tabular only: histogram gradient boosting, which takes
    numbers, missing values and categories as they are.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    text, numeric, categorical = dataset.text, list(dataset.numeric), list(dataset.categorical)
    if text:

        def text_model() -> Any:
            words = TfidfVectorizer(ngram_range=TEXT_NGRAMS, sublinear_tf=True)
            classifier = LogisticRegression(C=TEXT_C, solver="saga", max_iter=1000, random_state=0)
            if not numeric and not categorical:
                return make_pipeline(words, classifier)
            parts: list[tuple[str, Any, Any]] = [("text", words, text)]
            if numeric:
                parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))
            if categorical:
                parts.append(("categorical", OneHotEncoder(handle_unknown="ignore"), categorical))
            return make_pipeline(ColumnTransformer(parts), classifier)

        extra = " + one-hot categories" * bool(categorical) + " + scaled numbers" * bool(numeric)
        return text_model, f"TF-IDF word 1-2-grams{extra} -> logistic regression (C={TEXT_C:g})"

    def tabular_model() -> Any:
        # Categories as ordinal codes marked categorical: the trees split on them natively.
        encode = ColumnTransformer(
            [
                ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical),
                ("numeric", "passthrough", numeric),
            ],
            verbose_feature_names_out=False,
        )
        mask = [True] * len(categorical) + [False] * len(numeric)
        return make_pipeline(encode, HistGradientBoostingClassifier(categorical_features=mask, random_state=0))

    return tabular_model, "histogram gradient boosting (scikit-learn)"


def load_factory(spec: str) -> tuple[ModelFactory, str]:
    """`module:name` or `path/to/file.py:name` -> the callable it names, and `spec` for the report."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise ConfigError(
            f"--model {spec!r}: expected MODULE:FACTORY or path/to/file.py:FACTORY, "
            f"e.g. train.py:make_pipeline, naming a function that returns an unfitted estimator"
        )
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            if not path.exists():
                raise ConfigError(f"--model {spec!r}: no file {target!r}")
            # Its folder first on sys.path, so the file's own sibling imports work as when run as a script.
            sys.path.insert(0, str(path.parent))
            module_spec = importlib.util.spec_from_file_location(f"_shipway_model_{path.stem}", path)
            if module_spec is None or module_spec.loader is None:
                raise ConfigError(f"--model {spec!r}: {target!r} cannot be imported as a Python module")
            module = importlib.util.module_from_spec(module_spec)
            # Registered before it runs, as an import would: dataclasses and pickle look modules up there.
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"--model {spec!r}: importing {target!r} raised {type(err).__name__}: {err}") from err
    factory = getattr(module, name, None)
    if not callable(factory):
        found = sorted(n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise ConfigError(f"--model {spec!r}: {target!r} has no callable {name!r}; its callables are {found}")
    return factory, spec


def _probabilities(model: Any, X: Any, classes: list[str], where: str) -> np.ndarray:
    """`model.predict_proba(X)` with its columns in the order of `classes` (zeros for a class the
    model never saw), checked to be probabilities."""
    import numpy as np

    raw = model.predict_proba(X)
    try:
        probs = np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: predict_proba returned values that are not numbers ({err})") from err
    known = getattr(model, "classes_", None)
    seen = [str(c) for c in known] if known is not None else []
    if probs.ndim != 2 or probs.shape[0] != len(X) or (seen and probs.shape[1] != len(seen)):
        width = len(seen) or "one per class"
        raise ConfigError(
            f"{where}: predict_proba returned shape {probs.shape}; expected ({len(X)}, {width}): one row per input, "
            f"one column per class in the order of the model's classes_"
        )
    if not np.isfinite(probs).all():
        raise ConfigError(f"{where}: predict_proba returned NaN or infinite values; return probabilities")
    if (probs < -1e-6).any() or (probs > 1 + 1e-6).any() or not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
        bad = int(np.flatnonzero(~np.isclose(probs.sum(axis=1), 1, atol=1e-3) | (probs < 0).any(axis=1))[0])
        raise ConfigError(
            f"{where}: predict_proba row {bad} is {np.round(probs[bad][:5], 4).tolist()}..., which is not a probability "
            f"distribution (each value in [0, 1], each row summing to 1); return probabilities, e.g. wrap a "
            f"decision-function model in sklearn.calibration.CalibratedClassifierCV"
        )
    if not seen:
        seen = sorted(set(classes))  # scikit-learn's convention: columns in sorted label order
        if probs.shape[1] != len(seen):
            raise ConfigError(f"{where}: predict_proba returned {probs.shape[1]} columns for {len(seen)} classes")
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in seen if c not in index]
    if unknown:
        raise ConfigError(f"{where}: the model's classes_ include {unknown[:3]}, which are not labels in the data")
    out = np.zeros((probs.shape[0], len(classes)))
    out[:, [index[c] for c in seen]] = np.clip(probs, 0, 1)
    return out


def _fold(
    factory: ModelFactory, X: Any, y: np.ndarray, train: np.ndarray, test: np.ndarray, fold: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    where = f"the model ({name}) on fold {fold}"
    pick = (lambda rows: X.iloc[rows]) if hasattr(X, "iloc") else (lambda rows: X[rows])
    try:
        model = factory()
    except Exception as err:
        raise ConfigError(f"calling {name} raised {type(err).__name__}: {err}") from err
    if not hasattr(model, "fit") or not hasattr(model, "predict_proba"):
        raise ConfigError(
            f"{name} returned {type(model).__name__}, which has no fit and predict_proba; return an unfitted "
            f"scikit-learn-compatible classifier (e.g. a Pipeline ending in LogisticRegression)"
        )
    try:
        model.fit(pick(train), y[train])
    except Exception as err:
        raise ConfigError(f"{where}: fit raised {type(err).__name__}: {err}") from err
    try:
        return test, _probabilities(model, pick(test), sorted(np.unique(y).tolist()), where)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"{where}: predict_proba raised {type(err).__name__}: {err}") from err


def out_of_sample_probabilities(
    factory: ModelFactory,
    X: Any,
    y: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    jobs: int = 1,
    name: str = "the model",
) -> np.ndarray:
    """One row of class probabilities per input, each from the fold's model that did not see it.

    Columns are the sorted distinct labels of `y`. Folds are stratified, so each class is spread
    evenly; every class must have at least `folds` rows (the caller drops or reports the rest).
    """
    import numpy as np
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < folds:
        raise DataError(f"class {classes[counts.argmin()]!r} has {counts.min()} rows, fewer than the {folds} folds")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    tasks = (
        delayed(_fold)(factory, X, y, train, test, i + 1, name)
        for i, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y))
    )
    probs = np.zeros((len(y), len(classes)))
    # Folds are the parallel unit (--jobs). Threads inside a fit (BLAS in a linear model's solver,
    # OpenMP in gradient boosting) cost more than they saved here: on a busy 2-core machine they
    # made a logistic regression fit six times slower.
    with threadpool_limits(limits=1):
        for test, fold_probs in Parallel(n_jobs=jobs)(tasks):
            probs[test] = fold_probs
    return probs
