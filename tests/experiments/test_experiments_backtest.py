"""Rule backtests (experiments/backtest.py): reports of parts of a log merge into the report of the
whole, and a BacktestJob gives the rules it compiled to the column path."""

from __future__ import annotations

import pickle
from typing import Any

import orjson
import pytest

from shipway.experiments.backtest import BacktestJob, BacktestReport, merged, replay
from shipway.rules import RuleSet
from shipway.rules.live import Active

INPUT = {"type": "object", "properties": {"amount": {"type": "integer"}, "customer": {"type": "string"}}}
OUTPUT = {"type": "object", "properties": {"intent": {"type": "string"}, "probability": {"type": "number"}}}
CURRENT = """version: current-1
default: {queue: general}
rules:
  - name: cards
    when: output.intent == 'card'
    then: {queue: cards}
"""
PROPOSED = """version: proposed-1
default: {queue: general}
rules:
  - name: big
    when: input.amount > 50
    then: {queue: urgent, review: true, reason: big}
  - name: unsure
    when: output.probability < 0.3
    then: {fallback: true, set: {probability: 0.0}}
"""
CANDIDATE = """version: cand-1
default: {queue: human}
rules: []
"""


def _rows(n: int = 60) -> list[tuple[str, float, str, str, None, str | None]]:
    return [
        (
            f"r{i:03d}",
            1000.0 + (i * 7) % 23,  # times out of order, with ties: examples are picked by (ts, id)
            orjson.dumps({"amount": i * 3 % 101, "customer": f"c{i % 9}"}).decode(),
            orjson.dumps({"intent": "card" if i % 4 == 0 else "fee", "probability": (i % 10) / 10}).decode(),
            None,
            "shadow" if i % 17 == 0 else "on",
        )
        for i in range(n)
    ]


def _job(**options: Any) -> BacktestJob:
    return BacktestJob((PROPOSED, "proposed.yaml"), (CURRENT, "rules.yaml"), INPUT, OUTPUT, examples=2, **options)


@pytest.mark.parametrize("cut", [1, 20, 59])
def test_reports_of_parts_merge_into_the_report_of_the_whole(cut: int) -> None:
    current, proposed = _job().rule_sets()
    rows = _rows()
    outcomes = {f"r{i:03d}": {"label": "card" if i % 3 else "fee", "queue": "urgent"} for i in range(0, 60, 2)}
    whole = replay(rows, current, proposed, examples=2, outcomes=outcomes)
    parts = [replay(part, current, proposed, examples=2, outcomes=outcomes) for part in (rows[:cut], rows[cut:])]
    both = merged(parts)
    assert both.to_dict() == whole.to_dict()
    assert whole.changed and whole.skipped and whole.review and whole.fallback and whole.overrides
    assert both.current_score is not None and both.current_score.labelled == 28  # 30 came back, 2 in shadow
    assert merged(reversed(parts)).to_dict() == whole.to_dict()  # whichever part comes first


def test_only_reports_of_the_same_rule_sets_merge() -> None:
    with pytest.raises(ValueError, match="only reports of the same two rule sets merge"):
        BacktestReport("a", "b").merge(BacktestReport("a", "c"))
    empty = BacktestReport("a", "b", limit=5)
    assert empty.merge(BacktestReport("a", "b", total=3, first_ts=2.0)).to_dict()["window"] == [2.0, None]


def test_a_job_gives_the_rules_it_compiled_with_the_candidate_beside_the_current_ones() -> None:
    job = _job(candidate=(CANDIDATE, "candidate.yaml"), candidate_options={"mode": "canary", "canary": 0.25})
    current, proposed = job.rule_sets()  # compiled on first ask
    assert isinstance(current, Active) and isinstance(proposed, RuleSet)
    assert current.versions == ("current-1", "cand-1") and proposed.version == "proposed-1"
    assert (current.candidate_mode, current.canary) == ("canary", 0.25)
    again = job.rule_sets()
    assert again[0] is current and again[1] is proposed  # compiled once
    # What a worker gets: the job without its compiled rules, which it compiles again.
    copy = pickle.loads(pickle.dumps(job))
    assert copy.rule_sets()[1] is not proposed and copy.rule_sets()[0].versions == current.versions
