"""Tabular recipes: each input is a dict of fields (numbers, or text categories one-hot encoded).

Fields become columns through scikit-learn's DictVectorizer, saved with skops beside the model.
scikit-learn models are saved with skops, LightGBM and XGBoost boosters in their own model files
(text and UBJSON): none of these formats runs code when loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shipway.errors import RecipeError
from shipway.recipes._base import Data, Param, Recipe
from shipway.recipes._sklearn import load_skops, save_skops

__all__ = ["HistGradientBoosting", "LightGBM", "Logistic", "RandomForest", "XGBoost"]

_BOTH: tuple[str, ...] = ("tabular-classification", "tabular-regression")


def _rows(inputs: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for item in inputs:
        row = item.model_dump() if hasattr(item, "model_dump") else dict(item)
        out.append({k: v for k, v in row.items() if v is not None})
    return out


class _Model:
    """The fitted vectoriser, the estimator and whether it is a classifier."""

    def __init__(self, vectoriser: Any, estimator: Any, classifier: bool, classes: int = 0) -> None:
        self.vectoriser = vectoriser
        self.estimator = estimator
        self.classifier = classifier
        self.classes = classes


class _Tabular(Recipe):
    kinds = _BOTH
    extra = "sklearn"
    # scikit-learn types beyond those skops trusts by default that the model holds, reviewed:
    # scikit-learn's own tree structures, which build no code when loaded.
    trusted: tuple[str, ...] = ()

    def estimator(self, params: Mapping[str, Any], seed: int, classifier: bool) -> Any:
        raise NotImplementedError

    def fit(self, data: Data, params: Mapping[str, Any], seed: int) -> _Model:
        from sklearn.feature_extraction import DictVectorizer

        vectoriser = DictVectorizer(sparse=False)
        x = vectoriser.fit_transform(_rows(data.train.inputs))
        estimator = self.estimator(params, seed, data.classifier)
        if data.classifier:
            index = {label: i for i, label in enumerate(data.labels)}
            estimator.fit(x, np.array([index[str(y)] for y in data.train.targets]))
        else:
            estimator.fit(x, np.array(data.train.targets, dtype=float))
        return _Model(vectoriser, estimator, data.classifier, len(data.labels))

    def save(self, model: _Model, folder: Path) -> None:
        self._save_columns(model, folder)
        save_skops(model.estimator, folder / "model.skops", self.trusted)

    @staticmethod
    def _save_columns(model: _Model, folder: Path) -> None:
        """What every tabular model saves beside its estimator: the vectoriser and the kind."""
        save_skops(model.vectoriser, folder / "columns.skops")
        (folder / "tabular.json").write_text(
            json.dumps({"classifier": model.classifier, "classes": model.classes}), encoding="utf-8"
        )

    def _config(self, folder: Path) -> dict[str, Any]:
        return dict(json.loads((folder / "tabular.json").read_text(encoding="utf-8")))

    def load(self, folder: Path) -> _Model:
        config = self._config(folder)
        return _Model(
            load_skops(folder / "columns.skops"),
            load_skops(folder / "model.skops", self.trusted),
            config["classifier"],
            config["classes"],
        )

    def predict_batch(self, model: _Model, inputs: Sequence[Any]) -> np.ndarray:
        x = model.vectoriser.transform(_rows(inputs))
        if model.classifier:
            return self._proba(model, np.asarray(model.estimator.predict_proba(x)))
        return np.asarray(model.estimator.predict(x), dtype=float)

    @staticmethod
    def _proba(model: _Model, proba: np.ndarray) -> np.ndarray:
        """Columns for every class, even one the estimator never saw (all zeros)."""
        classes = getattr(model.estimator, "classes_", None)
        if classes is None or len(classes) == model.classes:
            return proba
        full = np.zeros((proba.shape[0], model.classes), dtype=proba.dtype)
        full[:, np.asarray(classes, dtype=int)] = proba
        return full


class Logistic(_Tabular):
    name = "tabular-lr"
    kinds = ("tabular-classification",)
    summary = "standardised fields and logistic regression"
    params = (
        Param("C", 1.0, "inverse regularisation strength"),
        Param("max_iter", 2000, "solver iterations"),
    )

    def estimator(self, params: Mapping[str, Any], seed: int, classifier: bool) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed)
        return make_pipeline(StandardScaler(), model)


class RandomForest(_Tabular):
    name = "random-forest"
    summary = "a random forest (scikit-learn)"
    params = (
        Param("trees", 300, "trees in the forest"),
        Param("min_samples_leaf", 1, "fewest rows in a leaf"),
        Param("jobs", 1, "processes per fit (shipway try runs recipes in parallel already)"),
    )
    trusted = ("sklearn.tree._tree.Tree",)

    def estimator(self, params: Mapping[str, Any], seed: int, classifier: bool) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        kind = RandomForestClassifier if classifier else RandomForestRegressor
        return kind(
            n_estimators=params["trees"],
            min_samples_leaf=params["min_samples_leaf"],
            n_jobs=params["jobs"],
            random_state=seed,
        )


class HistGradientBoosting(_Tabular):
    name = "hist-gbm"
    summary = "histogram gradient boosting (scikit-learn), with early stopping"
    params = (
        Param("learning_rate", 0.1, "shrinkage of each tree"),
        Param("max_iter", 300, "most boosting rounds"),
        Param("max_leaf_nodes", 31, "leaves per tree"),
    )
    trusted = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)

    def estimator(self, params: Mapping[str, Any], seed: int, classifier: bool) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        kind = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
        return kind(
            learning_rate=params["learning_rate"],
            max_iter=params["max_iter"],
            max_leaf_nodes=params["max_leaf_nodes"],
            random_state=seed,
        )


class _Booster(_Tabular):
    """A gradient-boosting library's own estimator, saved as its native model file."""

    file = ""

    def fit(self, data: Data, params: Mapping[str, Any], seed: int) -> _Model:
        model = super().fit(data, params, seed)
        # Keep the booster alone: what load() gives back, so a fitted and a loaded model predict alike.
        model.estimator = self.booster(model.estimator)
        return model

    def booster(self, estimator: Any) -> Any:
        raise NotImplementedError

    def save(self, model: _Model, folder: Path) -> None:
        self._save_columns(model, folder)
        self.save_booster(model.estimator, folder / self.file)

    def load(self, folder: Path) -> _Model:
        config = self._config(folder)
        booster = self.load_booster(folder / self.file)
        return _Model(load_skops(folder / "columns.skops"), booster, config["classifier"], config["classes"])

    def predict_batch(self, model: _Model, inputs: Sequence[Any]) -> np.ndarray:
        x = model.vectoriser.transform(_rows(inputs))
        out = np.asarray(self.booster_predict(model.estimator, x), dtype=float)
        if model.classifier and out.ndim == 1:  # binary: the probability of class 1
            out = np.column_stack([1.0 - out, out])
        return out

    def save_booster(self, booster: Any, path: Path) -> None:
        raise NotImplementedError

    def load_booster(self, path: Path) -> Any:
        raise NotImplementedError

    def booster_predict(self, booster: Any, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _import(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise RecipeError(f"this recipe needs {module}; install it with `pip install 'shipway[{extra}]'`.") from None


class LightGBM(_Booster):
    name = "lightgbm"
    summary = "LightGBM gradient-boosted trees, saved as LightGBM's text model"
    extra = "lightgbm"
    file = "model.lgb.txt"
    params = (
        Param("learning_rate", 0.05, "shrinkage of each tree"),
        Param("rounds", 400, "boosting rounds"),
        Param("num_leaves", 31, "leaves per tree"),
        Param("threads", 1, "threads per fit (shipway try runs recipes in parallel already)"),
    )

    def estimator(self, params: Mapping[str, Any], seed: int, classifier: bool) -> Any:
        lightgbm = _import("lightgbm", self.extra or "")
        kind = lightgbm.LGBMClassifier if classifier else lightgbm.LGBMRegressor
        return kind(
            learning_rate=params["learning_rate"],
            n_estimators=params["rounds"],
            num_leaves=params["num_leaves"],
            n_jobs=params["threads"],
            random_state=seed,
            verbose=-1,
        )

    def booster(self, estimator: Any) -> Any:
        return estimator.booster_

    def save_booster(self, booster: Any, path: Path) -> None:
        booster.save_model(str(path))

    def load_booster(self, path: Path) -> Any:
        return _import("lightgbm", self.extra or "").Booster(model_file=str(path))

    def booster_predict(self, booster: Any, x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(x))


class XGBoost(_Booster):
    name = "xgboost"
    summary = "XGBoost gradient-boosted trees, saved as XGBoost's UBJSON model"
    extra = "xgboost"
    file = "model.xgb.ubj"
    params = (
        Param("learning_rate", 0.1, "shrinkage of each tree"),
        Param("rounds", 300, "boosting rounds"),
        Param("max_depth", 6, "depth of each tree"),
        Param("threads", 1, "threads per fit (shipway try runs recipes in parallel already)"),
    )

    def estimator(self, params: Mapping[str, Any], seed: int, classifier: bool) -> Any:
        xgboost = _import("xgboost", self.extra or "")
        kind = xgboost.XGBClassifier if classifier else xgboost.XGBRegressor
        return kind(
            learning_rate=params["learning_rate"],
            n_estimators=params["rounds"],
            max_depth=params["max_depth"],
            n_jobs=params["threads"],
            random_state=seed,
        )

    def booster(self, estimator: Any) -> Any:
        return estimator.get_booster()

    def save_booster(self, booster: Any, path: Path) -> None:
        booster.save_model(str(path))

    def load_booster(self, path: Path) -> Any:
        booster = _import("xgboost", self.extra or "").Booster()
        booster.load_model(str(path))
        return booster

    def booster_predict(self, booster: Any, x: np.ndarray) -> np.ndarray:
        xgboost = _import("xgboost", self.extra or "")
        return np.asarray(booster.predict(xgboost.DMatrix(x)))
