"""Likely mislabelled rows, by confident learning over out-of-sample probabilities.

Confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels", JAIR 70, 2021): a class's threshold is the mean probability the model gives it
on rows labelled with it; a row labelled i counts toward the pair (i, j) when its probability of
class j reaches j's threshold (the likeliest such j). Those counts, the confident joint, estimate
how many rows of each class carry each wrong label, and that many rows are flagged. The
`cleanlab` library is the authors' reference implementation; this module calls it and turns its
indices into rows a person can check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shipway.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["METHODS", "LabelIssue", "confusions", "find_label_issues"]

# cleanlab's `filter_by` choices, its default first: which rows the confident joint flags.
METHODS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "low_self_confidence",
    "low_normalized_margin",
    "predicted_neq_given",
)


@dataclass(frozen=True)
class LabelIssue:
    """A row whose given label the cross-validated model doubts."""

    row: int  # the row's number in the file, from 0 (pandas' df.iloc[row] for a file read whole)
    given: str
    suggested: str  # the class the model finds most likely
    self_confidence: float  # the model's probability of the given label: the lower, the likelier an error
    suggested_confidence: float
    example: str  # the text, or the features as name=value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cleanlab() -> Any:
    try:
        import cleanlab.filter
    except ImportError as err:
        raise ConfigError(f"finding label issues needs cleanlab ({err}); pip install 'shipway[inspect]'") from err
    return cleanlab.filter


def find_label_issues(
    y: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    rows: np.ndarray,
    describe: Callable[[int], str],
    *,
    method: str = METHODS[0],
) -> list[LabelIssue]:
    """The rows confident learning flags, lowest self-confidence first.

    `y` holds class indices into `classes`; `probs` the out-of-sample probabilities, one column
    per class; `rows` the file row number of each; `describe(i)` what to show for the i-th.
    """
    import numpy as np

    if method not in METHODS:
        raise ConfigError(f"--method {method!r} is not one of {list(METHODS)}")
    flagged = _cleanlab().find_label_issues(
        labels=y, pred_probs=probs, filter_by=method, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    suggested = probs.argmax(axis=1)
    issues = []
    for i in np.asarray(flagged, dtype=int):
        issues.append(
            LabelIssue(
                row=int(rows[i]),
                given=classes[y[i]],
                suggested=classes[suggested[i]],
                self_confidence=round(float(probs[i, y[i]]), 4),
                suggested_confidence=round(float(probs[i, suggested[i]]), 4),
                example=describe(int(i)),
            )
        )
    return issues


def confusions(issues: list[LabelIssue], top: int = 10) -> list[dict[str, Any]]:
    """The most frequent (given, suggested) pairs among the issues: where labelling guidelines
    may blur two classes, or where one labeller systematically chose the wrong one."""
    pairs = Counter((i.given, i.suggested) for i in issues if i.given != i.suggested)
    return [{"given": g, "suggested": s, "count": n} for (g, s), n in pairs.most_common(top)]
