"""What a profile keeps of one numeric column or one text column, and its JSON form."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipway.monitoring.drift._stats import (
    bin_counts,
    dkw_epsilon,
    histogram,
    quantile_cuts,
    wasserstein_expected_error,
)
from shipway.monitoring.drift.text_drift import vocabulary

__all__ = ["HISTOGRAM_BINS", "PSI_BINS", "NumericReference", "TextReference"]

PSI_BINS = 10  # deciles of the reference, the usual choice for PSI
HISTOGRAM_BINS = 20  # equal-width bins over the reference's range, for plots


def encode_array(array: np.ndarray) -> str:
    """float64 values as base64 of their little-endian bytes: exact and compact in JSON."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f8").tobytes()).decode("ascii")


def decode_array(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text, validate=True), dtype="<f8").astype(np.float64)


@dataclass(slots=True)
class NumericReference:
    """A numeric column (or the lengths of a text column) of the reference data."""

    sample: np.ndarray  # sorted; every value when there are at most sample_size of them
    count: int  # values present in the full reference
    mean: float
    std: float  # population standard deviation (numpy's default), the normaliser of Wasserstein
    minimum: float
    maximum: float
    cuts: np.ndarray  # PSI bins: (-inf, c0], (c0, c1], ..., (c_last, inf)
    cut_counts: np.ndarray
    edges: np.ndarray  # histogram bins for plots
    edge_counts: np.ndarray
    ks_error: float  # DKW: the sample's CDF is this close to the full data's, with 95% probability
    wasserstein_error: float  # expected Wasserstein-1 error of the sample (0 when it is the full data)

    @property
    def exact(self) -> bool:
        return len(self.sample) == self.count

    @classmethod
    def build(cls, values: np.ndarray, sample_size: int, rng: np.random.Generator) -> NumericReference:
        """Summarise `values` (float64, no NaN, not empty)."""
        full = np.sort(values)
        if len(full) > sample_size:
            sample = np.sort(rng.choice(full, size=sample_size, replace=False))
            ks_error = dkw_epsilon(sample_size)
        else:
            sample, ks_error = full, 0.0
        lo, hi = float(full[0]), float(full[-1])
        edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1) if hi > lo else np.array([lo - 0.5, hi + 0.5])
        cuts = quantile_cuts(full, PSI_BINS)
        return cls(
            sample=sample,
            count=len(full),
            mean=float(np.mean(full)),
            std=float(np.std(full)),
            minimum=lo,
            maximum=hi,
            cuts=cuts,
            cut_counts=bin_counts(full, cuts),
            edges=edges,
            edge_counts=histogram(full, edges)[0],
            ks_error=ks_error,
            wasserstein_error=wasserstein_expected_error(full, len(sample)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "sample_base64_f8": encode_array(self.sample),
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.minimum,
            "max": self.maximum,
            "psi_cuts": self.cuts.tolist(),
            "psi_counts": self.cut_counts.tolist(),
            "histogram_edges": self.edges.tolist(),
            "histogram_counts": self.edge_counts.tolist(),
            "ks_error_95": self.ks_error,
            "wasserstein_expected_error": self.wasserstein_error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NumericReference:
        sample = decode_array(data["sample_base64_f8"])
        if len(sample) == 0 or np.any(np.diff(sample) < 0) or np.isnan(sample).any():
            raise ValueError("the numeric sample is empty, unsorted or holds NaN")
        return cls(
            sample=sample,
            count=int(data["count"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            minimum=float(data["min"]),
            maximum=float(data["max"]),
            cuts=np.asarray(data["psi_cuts"], dtype=np.float64),
            cut_counts=np.asarray(data["psi_counts"], dtype=np.int64),
            edges=np.asarray(data["histogram_edges"], dtype=np.float64),
            edge_counts=np.asarray(data["histogram_counts"], dtype=np.int64),
            ks_error=float(data["ks_error_95"]),
            wasserstein_error=float(data["wasserstein_expected_error"]),
        )


@dataclass(slots=True)
class TextReference:
    """A text column of the reference data."""

    lengths: NumericReference  # in characters
    vocabulary: dict[str, int]  # the most frequent tokens, with their counts
    n_tokens: int
    oov_expected: float  # the out-of-vocabulary rate expected of new text from the same source
    sample: list[str]  # random texts for the domain classifier

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        rng: np.random.Generator,
        sample_size: int,
        text_sample_size: int,
        vocabulary_size: int,
    ) -> TextReference:
        lengths = np.fromiter(map(len, texts), dtype=np.float64, count=len(texts))
        vocab, n_tokens, expected = vocabulary(texts, vocabulary_size)
        if len(texts) > text_sample_size:
            chosen = rng.choice(len(texts), size=text_sample_size, replace=False)
            sample = [texts[i] for i in sorted(chosen)]
        else:
            sample = list(texts)
        return cls(NumericReference.build(lengths, sample_size, rng), vocab, n_tokens, expected, sample)

    def to_json(self) -> dict[str, Any]:
        return {
            "lengths": self.lengths.to_json(),
            "vocabulary": self.vocabulary,
            "n_tokens": self.n_tokens,
            "oov_expected": self.oov_expected,
            "sample": self.sample,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TextReference:
        return cls(
            NumericReference.from_json(data["lengths"]),
            {str(k): int(v) for k, v in data["vocabulary"].items()},
            int(data["n_tokens"]),
            float(data["oov_expected"]),
            [str(t) for t in data["sample"]],
        )
