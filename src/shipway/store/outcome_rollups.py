"""Daily rollups of joined outcomes for score and ranking outputs (schema version 7).

A score output (one number per prediction) is compared with a numeric outcome;
a ranked output with the place of the true item. Both are folded, as feedback is
joined, into per-day rows that merge by addition, so metrics over 30 days read
thousands of rows, not millions:

- feedback_scores: per score bin (1/1000 wide over [0, 1], the end bins taking what lies beyond), outcome
  (1 or 0; -1 for any other number) and residual bin (signed, log-spaced |outcome -
  score|, as rollups.latency_bucket): the count and the sums of score, outcome,
  squared error, |error| and log loss. Brier score, MAE, RMSE, bias and log loss
  are exact from them; ROC AUC and average precision are exact for the scores
  rounded down to their bin.
- feedback_ranks: per rank of the true item (0: not in the list), the count.
  Hit rates, MRR and NDCG at any k are exact from it.

Window edges that cut a day are read from the feedback rows themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from shipway.store.rollups import latency_bucket

if TYPE_CHECKING:
    from shipway.store.base import Executor, Store

__all__ = [
    "SCORE_BINS",
    "SERIES_BINS",
    "SUMS",
    "OutcomeSums",
    "joined_output",
    "outcome_tables",
    "rank_backfill",
    "rank_rows",
    "rank_rows_per",
    "score_rows",
    "score_rows_per",
]

SCORE_BINS = 1000
SERIES_BINS = 100  # per-bucket series: scores binned 1/100 wide
_COARSE = SCORE_BINS // SERIES_BINS
# The sums a feedback_scores row carries, in column order after n.
SUMS = ("score_sum", "actual_sum", "sq_error", "abs_error", "log_loss")
_EPS = float.fromhex("0x1.0p-52")  # float64 machine epsilon: scikit-learn's log_loss clips scores to it

_TABLES = (
    f"""CREATE TABLE feedback_scores (
        day BIGINT NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL, bin INTEGER NOT NULL,
        positive INTEGER NOT NULL, residual INTEGER NOT NULL, n BIGINT NOT NULL,
        {", ".join(f"{s} {{real}} NOT NULL" for s in SUMS)},
        PRIMARY KEY (day, service, name, bin, positive, residual)
    )""",
    """CREATE TABLE feedback_ranks (
        day BIGINT NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL, rank INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (day, service, name, rank)
    )""",
)
_UPSERT_SCORES = (
    f"INSERT INTO feedback_scores (day, service, name, bin, positive, residual, n, {', '.join(SUMS)}) "
    f"VALUES ({', '.join('?' * (7 + len(SUMS)))}) "
    "ON CONFLICT (day, service, name, bin, positive, residual) DO UPDATE SET n = feedback_scores.n + excluded.n, "
    + ", ".join(f"{s} = feedback_scores.{s} + excluded.{s}" for s in SUMS)
)
_UPSERT_RANKS = (
    "INSERT INTO feedback_ranks (day, service, name, rank, n) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (day, service, name, rank) DO UPDATE SET n = feedback_ranks.n + excluded.n"
)


def outcome_tables(real: str) -> tuple[str, ...]:
    """The version-7 statements for one dialect's float type."""
    return tuple(t.format(real=real) for t in _TABLES)


def rank_backfill(day: str) -> str:
    """The ranks of feedback joined before version 7 (`day`: the dialect's day of pred_ts).

    Scores are not backfilled: their sums need the bins and logarithms computed here."""
    return (
        f"INSERT INTO feedback_ranks SELECT {day}, service, name, rank, COUNT(*) FROM feedback "
        "WHERE pred_ts IS NOT NULL AND rank IS NOT NULL GROUP BY 1, 2, 3, 4"
    )


def score_key(score: float, actual: float) -> tuple[int, int, int]:
    """(score bin, outcome 1/0 or -1, signed residual bin) of one scored outcome."""
    # A regressor fit to 0/1 targets strays a little outside [0, 1]: such scores share the end bins.
    score_bin = min(SCORE_BINS - 1, max(0, math.floor(score * SCORE_BINS)))
    positive = int(actual) if actual in (0.0, 1.0) else -1
    error = actual - score
    residual = latency_bucket(abs(error)) * (1 if error >= 0 else -1)
    return score_bin, positive, residual


def score_sums(score: float, actual: float) -> tuple[float, ...]:
    """The sums of SUMS that one scored outcome adds."""
    loss = 0.0
    if actual in (0.0, 1.0):
        p = min(max(score, _EPS), 1 - _EPS)
        loss = -math.log(p if actual == 1.0 else 1 - p)
    error = actual - score
    return (score, actual, error * error, abs(error), loss)


class OutcomeSums:
    """Contributions of joined feedback rows to feedback_scores and feedback_ranks, summed
    before one upsert each (sign -1 takes back a row a newer value replaces)."""

    def __init__(self) -> None:
        self.scores: dict[tuple[Any, ...], list[float]] = {}
        self.ranks: dict[tuple[Any, ...], int] = {}

    def add(
        self,
        name: str,
        service: str,
        pred_ts: float,
        rank: int | None,
        number: float | None,
        score: float | None,
        sign: int,
    ) -> None:
        day = int(pred_ts // 86400)
        if rank is not None:
            key = (day, service, name, int(rank))
            self.ranks[key] = self.ranks.get(key, 0) + sign
        if score is None or number is None or not (math.isfinite(score) and math.isfinite(number)):
            return
        found = self.scores.setdefault((day, service, name, *score_key(score, number)), [0.0] * (1 + len(SUMS)))
        found[0] += sign
        for i, value in enumerate(score_sums(score, number), start=1):
            found[i] += sign * value

    def write(self, run: Executor) -> None:
        run.many(_UPSERT_SCORES, [(*key, int(v[0]), *v[1:]) for key, v in self.scores.items()])
        run.many(_UPSERT_RANKS, [(*key, n) for key, n in self.ranks.items()])


def score_rows(store: Store, service: str, since: float, until: float, name: str = "label") -> list[tuple[Any, ...]]:
    """Rows of (score bin, outcome, residual bin, n, *SUMS) for the outcome `name` over the window,
    by the time of the predictions."""
    ph = store.placeholder
    sums = ", ".join(f"SUM({s})" for s in SUMS)

    def whole(first_day: int, last_day: int) -> list[tuple[Any, ...]]:
        return store._query(
            f"SELECT bin, positive, residual, SUM(n), {sums} FROM feedback_scores WHERE service = {ph} "
            f"AND name = {ph} AND day >= {ph} AND day < {ph} GROUP BY 1, 2, 3",
            [service, name, first_day, last_day],
        )

    def part(low: float, high: float) -> list[tuple[Any, ...]]:
        raw = store._query(
            f"SELECT confidence, number FROM feedback WHERE service = {ph} AND name = {ph} AND pred_ts >= {ph} "
            f"AND pred_ts < {ph} AND confidence IS NOT NULL AND number IS NOT NULL",
            [service, name, low, high],
        )
        sums = OutcomeSums()
        for score, number in raw:
            sums.add(name, service, 0.0, None, float(number), float(score), 1)
        return [(*key[3:], int(v[0]), *v[1:]) for key, v in sums.scores.items()]

    return [row for row in _by_days(since, until, whole, part) if row[3]]


def rank_rows(store: Store, service: str, since: float, until: float, name: str = "label") -> list[tuple[int, int]]:
    """Rows of (rank of the true item, 0 for not listed; count) over the window."""
    ph = store.placeholder

    def whole(first_day: int, last_day: int) -> list[tuple[Any, ...]]:
        return store._query(
            f"SELECT rank, SUM(n) FROM feedback_ranks WHERE service = {ph} AND name = {ph} "
            f"AND day >= {ph} AND day < {ph} GROUP BY 1",
            [service, name, first_day, last_day],
        )

    def part(low: float, high: float) -> list[tuple[Any, ...]]:
        return store._query(
            f"SELECT rank, COUNT(*) FROM feedback WHERE service = {ph} AND name = {ph} AND pred_ts >= {ph} "
            f"AND pred_ts < {ph} AND rank IS NOT NULL GROUP BY 1",
            [service, name, low, high],
        )

    counts: dict[int, int] = {}
    for rank, n in _by_days(since, until, whole, part):
        counts[int(rank)] = counts.get(int(rank), 0) + int(n)
    return sorted((rank, n) for rank, n in counts.items() if n)


def score_rows_per(
    store: Store, service: str, since: float, until: float, step_s: int, name: str = "label"
) -> dict[int, list[tuple[Any, ...]]]:
    """`score_rows` for every `step_s` bucket of the window at once, by bucket start, on coarser
    score bins (SERIES_BINS: a series of many buckets would otherwise carry the rollup's rows
    of every day) and without residual bins (0): a step of whole days reads the daily rollup in
    one query (and the edges' feedback rows), a shorter step the window's feedback rows."""
    ph = store.placeholder
    sums = OutcomeSums()
    first_day, last_day = _whole_days(since, until, step_s)
    if first_day < last_day:
        per = step_s // 86400
        for day, *row in store._query(
            f"SELECT day, bin / {_COARSE} * {_COARSE}, positive, 0, SUM(n), {', '.join(f'SUM({s})' for s in SUMS)} "
            f"FROM feedback_scores WHERE service = {ph} AND name = {ph} AND day >= {ph} AND day < {ph} "
            "GROUP BY 1, 2, 3",
            [service, name, first_day, last_day],
        ):
            key = (int(day) // per * step_s, *(int(v) for v in row[:3]))
            found = sums.scores.setdefault(key, [0.0] * (1 + len(SUMS)))
            for i, value in enumerate(row[3:]):
                found[i] += float(value)
    for low, high in _raw_spans(since, until, first_day, last_day):
        for pred_ts, score, number in store._query(
            f"SELECT pred_ts, confidence, number FROM feedback WHERE service = {ph} AND name = {ph} "
            f"AND pred_ts >= {ph} AND pred_ts < {ph} AND confidence IS NOT NULL AND number IS NOT NULL",
            [service, name, low, high],
        ):
            bucket = int(float(pred_ts) // step_s * step_s)
            score_bin, positive, _ = score_key(float(score), float(number))
            key = (bucket, score_bin // _COARSE * _COARSE, positive, 0)
            found = sums.scores.setdefault(key, [0.0] * (1 + len(SUMS)))
            found[0] += 1
            for i, value in enumerate(score_sums(float(score), float(number)), start=1):
                found[i] += value
    out: dict[int, list[tuple[Any, ...]]] = {}
    for key, v in sums.scores.items():
        if v[0]:
            out.setdefault(key[0], []).append((*key[1:], int(v[0]), *v[1:]))
    return out


def rank_rows_per(
    store: Store, service: str, since: float, until: float, step_s: int, name: str = "label"
) -> dict[int, list[tuple[int, int]]]:
    """`rank_rows` for every `step_s` bucket of the window at once, by bucket start."""
    ph = store.placeholder
    counts: dict[tuple[int, int], int] = {}
    first_day, last_day = _whole_days(since, until, step_s)
    if first_day < last_day:
        per = step_s // 86400
        for day, rank, n in store._query(
            f"SELECT day, rank, SUM(n) FROM feedback_ranks WHERE service = {ph} AND name = {ph} "
            f"AND day >= {ph} AND day < {ph} GROUP BY 1, 2",
            [service, name, first_day, last_day],
        ):
            key = (int(day) // per * step_s, int(rank))
            counts[key] = counts.get(key, 0) + int(n)
    for low, high in _raw_spans(since, until, first_day, last_day):
        for pred_ts, rank in store._query(
            f"SELECT pred_ts, rank FROM feedback WHERE service = {ph} AND name = {ph} AND pred_ts >= {ph} "
            f"AND pred_ts < {ph} AND rank IS NOT NULL",
            [service, name, low, high],
        ):
            key = (int(float(pred_ts) // step_s * step_s), int(rank))
            counts[key] = counts.get(key, 0) + 1
    out: dict[int, list[tuple[int, int]]] = {}
    for (bucket, rank), n in sorted(counts.items()):
        if n:
            out.setdefault(bucket, []).append((rank, n))
    return out


def _whole_days(since: float, until: float, step_s: int) -> tuple[int, int]:
    """The days the daily rollups may answer for: whole days inside the window, when the step is
    a whole number of days (buckets start at multiples of the step, so they hold whole days)."""
    if step_s % 86400:
        return 0, 0
    return -int(-since // 86400), int(until // 86400)


def _raw_spans(since: float, until: float, first_day: int, last_day: int) -> list[tuple[float, float]]:
    """The parts of the window the feedback rows answer for: all of it, or the edges of the whole days."""
    if first_day >= last_day:
        return [(since, until)]
    return [(since, first_day * 86400), (last_day * 86400, until)]


def joined_output(store: Store, service: str, since: float, until: float) -> bytes | None:
    """The logged output of one prediction of the window that has feedback, to tell the output's
    kind by; None when no feedback of the window is joined."""
    ph = store.placeholder
    found = store._query(
        f"SELECT request_id FROM feedback WHERE service = {ph} AND pred_ts >= {ph} AND pred_ts < {ph} LIMIT 1",
        [service, since, until],
    )
    if not found:
        return None
    prediction = store._find_predictions([found[0][0]]).get(found[0][0])
    return None if prediction is None else bytes(prediction.outputs)


def _by_days(since: float, until: float, whole: Any, part: Any) -> Iterable[tuple[Any, ...]]:
    """The daily rollup for the whole days inside [since, until), raw rows for the edges."""
    first_day, last_day = -int(-since // 86400), int(until // 86400)
    if first_day >= last_day:
        return list(part(since, until))
    return [*whole(first_day, last_day), *part(since, first_day * 86400), *part(last_day * 86400, until)]
