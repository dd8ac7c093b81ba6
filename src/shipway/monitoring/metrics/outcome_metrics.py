"""Online metrics of score and ranked outputs, from the store's outcome rollups.

Binary scores (every outcome 0 or 1): ROC AUC, average
precision (PR AUC), Brier score, log loss, reliability bins and accuracy at the
threshold. Regression scores: MAE, RMSE, bias and a residual histogram. Rankings:
hit rate, MRR and NDCG at k, and the share of outcomes the list held.

The scores are binned 1/1000 wide (store.outcome_rollups): ROC AUC and average
precision are exact for the scores rounded down to their bin, and ROC AUC is within
`auc_bound` (half the share of positive-negative pairs that share a bin) of the
exact one. Accuracy at the threshold is exact when the threshold is a multiple of
1/1000. Everything else is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from shipway.store.outcome_rollups import SCORE_BINS
from shipway.store.rollups import bucket_bounds

__all__ = ["RANK_KS", "binary_metrics", "is_binary", "ranking_metrics", "regression_metrics"]

RANK_KS = (1, 3, 5, 10)
CALIBRATION_BINS = 10


def is_binary(rows: Sequence[tuple[Any, ...]]) -> bool:
    """Whether every scored outcome was 0 or 1."""
    return bool(rows) and all(int(r[1]) >= 0 for r in rows)


def binary_metrics(rows: Sequence[tuple[Any, ...]], threshold: float) -> dict[str, Any]:
    """Rows of (score bin, outcome, residual bin, n, score sum, outcome sum, squared error,
    |error| sum, log loss sum), every outcome 0 or 1."""
    pos = [0] * SCORE_BINS
    neg = [0] * SCORE_BINS
    n = 0
    sq_error = log_loss = 0.0
    calibration: dict[int, list[float]] = {}
    for b, positive, _, count, score_sum, actual_sum, sq, _abs, loss in rows:
        count = int(count)
        (pos if int(positive) == 1 else neg)[int(b)] += count
        n += count
        sq_error += float(sq)
        log_loss += float(loss)
        found = calibration.setdefault(int(b) * CALIBRATION_BINS // SCORE_BINS, [0, 0.0, 0.0])
        found[0] += count
        found[1] += float(score_sum)
        found[2] += float(actual_sum)
    positives, negatives = sum(pos), sum(neg)
    cut = math.ceil(threshold * SCORE_BINS - 1e-9)  # bins at or above hold scores >= threshold
    tp, fp = sum(pos[max(cut, 0) :]), sum(neg[max(cut, 0) :])
    fn, tn = positives - tp, negatives - fp
    auc, bound = _roc_auc(pos, neg)
    return {
        "count": n,
        "positives": positives,
        "threshold": threshold,
        "roc_auc": auc,
        "auc_bound": bound,
        "pr_auc": _average_precision(pos, neg),
        "brier": _ratio(sq_error, n),
        "log_loss": _ratio(log_loss, n),
        "accuracy": _ratio(tp + tn, n),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, positives),
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "calibration": _reliability(calibration, n),
    }


def regression_metrics(rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    """The same rows, for any numeric outcome: errors are outcome minus score."""
    n = sum(int(r[3]) for r in rows)
    score_sum = sum(float(r[4]) for r in rows)
    actual_sum = sum(float(r[5]) for r in rows)
    sq_error = sum(float(r[6]) for r in rows)
    abs_error = sum(float(r[7]) for r in rows)
    residuals: dict[int, int] = {}
    for r in rows:
        residuals[int(r[2])] = residuals.get(int(r[2]), 0) + int(r[3])
    histogram = []
    for b, count in sorted(residuals.items()):
        low, high = bucket_bounds(abs(b))
        lo, hi = (low, high) if b >= 0 else (-high, -low)
        histogram.append({"lo": lo, "hi": hi, "count": count})
    return {
        "count": n,
        "mae": _ratio(abs_error, n),
        "rmse": math.sqrt(sq_error / n) if n else None,
        "bias": _ratio(score_sum - actual_sum, n),  # mean score minus mean outcome: > 0 overestimates
        "mean_actual": _ratio(actual_sum, n),
        "mean_score": _ratio(score_sum, n),
        "residuals": histogram,
    }


def ranking_metrics(rows: Sequence[tuple[int, int]], ks: Sequence[int] = RANK_KS) -> dict[str, Any]:
    """Rows of (rank of the true item, 0 for not listed; count)."""
    n = sum(count for _, count in rows)
    listed = [(rank, count) for rank, count in rows if rank >= 1]
    return {
        "count": n,
        "hit_rate": {str(k): _ratio(sum(c for r, c in listed if r <= k), n) for k in ks},
        "mrr": _ratio(sum(c / r for r, c in listed), n),
        # One relevant item per outcome: its DCG is 1 / log2(rank + 1) and the ideal DCG is 1.
        "ndcg": {str(k): _ratio(sum(c / math.log2(r + 1) for r, c in listed if r <= k), n) for k in ks},
        "listed": _ratio(sum(c for _, c in listed), n),
    }


def _roc_auc(pos: list[int], neg: list[int]) -> tuple[float | None, float | None]:
    """The Mann-Whitney statistic over bins (ties within a bin count one half) and its bound."""
    positives, negatives = sum(pos), sum(neg)
    if not positives or not negatives:
        return None, None
    wins = ties = 0.0
    below = 0
    for p, q in zip(pos, neg, strict=True):
        wins += p * below
        ties += p * q
        below += q
    pairs = positives * negatives
    return (wins + ties / 2) / pairs, ties / 2 / pairs


def _average_precision(pos: list[int], neg: list[int]) -> float | None:
    """scikit-learn's average_precision_score over the bins, highest first."""
    positives = sum(pos)
    if not positives:
        return None
    tp = fp = 0
    total = 0.0
    for p, q in zip(reversed(pos), reversed(neg), strict=True):
        if not p and not q:
            continue
        tp, fp = tp + p, fp + q
        total += p / positives * tp / (tp + fp)
    return total


def _reliability(bins: dict[int, list[float]], n: int) -> dict[str, Any]:
    """Mean score against the share of positives per tenth, and the expected calibration error."""
    out, ece = [], 0.0
    for b, (count, score_sum, actual_sum) in sorted(bins.items()):
        if not count:
            continue
        score, rate = score_sum / count, actual_sum / count
        ece += count / n * abs(rate - score)
        out.append(
            {
                "lo": b / CALIBRATION_BINS,
                "hi": (b + 1) / CALIBRATION_BINS,
                "count": int(count),
                "confidence": score,
                "accuracy": rate,
            }
        )
    return {"ece": ece if n else None, "bins": out}


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None
