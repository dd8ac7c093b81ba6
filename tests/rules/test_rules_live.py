"""The rules stage (rules/live.py) and its batch form: a batch is decided as its items are one by
one, live rules alone or with canary and shadow rules beside them, and the rules' compiled batch
form (`RuleSet.decide_batch`) answers what `decide` answers row by row."""

from __future__ import annotations

from typing import Any

from shipway.core.pipeline import Decided
from shipway.rules import load_rules
from shipway.rules.live import META_SCHEMA, Active, LiveRules, canary_bucket, rules_stage

LIVE = """version: live-1
default: {queue: general, answer: {intent: unknown, p: 0.0}}
rules:
  - name: night
    when: meta.time < 1000
    then: {queue: night, set: {p: 1.0}}
  - name: stop-on-cards
    when: output.intent == "card"
    then: {queue: cards}
    stop: true
  - name: unsure
    when: output.p < 0.5
    then: {review: true, reason: unsure}
  - name: give-up
    when: output.intent == "gibberish"
    then: {fallback: true}
  - name: broken
    when: output.p * 2 > output.intent
    then: {queue: never}
"""
CANDIDATE = """version: cand-1
default: {queue: general}
rules:
  - name: all-urgent
    then: {queue: urgent}
"""

ROWS: list[tuple[dict[str, Any], dict[str, Any], float]] = [
    ({"customer": f"c{i}"}, {"intent": intent, "p": p}, ts)
    for i, (intent, p, ts) in enumerate(
        [("card", 0.9, 2000.0), ("card", 0.2, 10.0), ("balance", 0.3, 2000.0), ("gibberish", 0.9, 2000.0)] * 5
        + [("balance", i / 10, 500.0 * i) for i in range(10)]
    )
]


def _rules(text: str) -> Any:
    return load_rules(text, meta_schema=META_SCHEMA)


def _timed(live: LiveRules, times: list[float]) -> None:
    live.clock = iter(times).__next__  # each decision reads its row's time, in order


def test_the_compiled_batch_form_decides_each_row_as_decide_does() -> None:
    rules = _rules(LIVE)
    assert rules.reads_meta and not _rules(CANDIDATE).reads_meta
    requests, outputs, times = zip(*ROWS, strict=True)
    metas = [{"time": t, "canary": False} for t in times]
    batch = rules.decide_batch(requests, outputs, metas)
    one_by_one = [rules.decide(r, o, m) for r, o, m in zip(requests, outputs, metas, strict=True)]
    assert batch == one_by_one
    assert {d.queue for d in batch} >= {"night", "cards", "general"}  # the stop, meta and default paths ran
    # The broken rule is recorded on every row it reached: all but the cards, whose rule stops.
    assert [bool(d.errors) for d in batch] == [o["intent"] != "card" for o in outputs]


def test_the_stage_decides_a_batch_as_its_items_live_canary_and_shadow() -> None:
    live_rules, candidate = _rules(LIVE), _rules(CANDIDATE)
    requests = [r for r, _, _ in ROWS]
    outputs = [o for _, o, _ in ROWS]
    times = [t for _, _, t in ROWS]
    for active in (
        Active(live=live_rules),
        Active(live=live_rules, candidate=candidate, candidate_mode="shadow"),
        Active(live=live_rules, candidate=candidate, candidate_mode="canary", canary=0.5, canary_key="input.customer"),
    ):
        one, many = LiveRules(), LiveRules()
        one.swap(active)
        many.swap(active)
        _timed(one, times)
        _timed(many, times)
        singly = [one.decide(o, r) for o, r in zip(outputs, requests, strict=True)]
        batch = rules_stage(many).many(list(outputs), requests)
        assert [(d.output, d.decision, d.shadow, d.rules_version) for d in batch] == [
            (d.output, d.decision, d.shadow, d.rules_version) for d in singly
        ], active
        assert all(isinstance(d, Decided) for d in batch)
        # What an offline replay compares: the decision each row was answered with.
        decided = LiveRules().decisions(outputs, requests, times, active)
        assert [d.to_dict() if d else None for d in decided] == [d.decision for d in singly], active
    # A canary at half the traffic takes some rows and leaves the others to the live rules.
    canary = Active(live=live_rules, candidate=candidate, candidate_mode="canary", canary=0.5)
    queues = {d.queue for d in LiveRules().decisions(outputs, requests, times, canary) if d is not None}
    assert "urgent" in queues and len(queues) > 1


def test_without_rules_the_batch_passes_through() -> None:
    outputs = [{"intent": "card", "p": 0.9}]
    assert rules_stage(LiveRules()).many(outputs, [{}]) is outputs
    assert LiveRules().decisions(outputs, [{}], [1.0]) == [None]


def test_the_canary_takes_the_requests_whose_bucket_is_below_its_share() -> None:
    live_rules, candidate = _rules(LIVE), _rules(CANDIDATE)
    active = Active(
        live=live_rules, candidate=candidate, candidate_mode="canary", canary=0.3, canary_key="input.customer"
    )
    requests = [r for r, _, _ in ROWS]
    outputs = [o for _, o, _ in ROWS]
    times = [t for _, _, t in ROWS]
    buckets = [canary_bucket("input.customer", r, o) for r, o in zip(requests, outputs, strict=True)]
    assert all(0 <= b < 1 for b in buckets) and len(set(buckets)) == len({r["customer"] for r in requests})
    decided = LiveRules().decisions(outputs, requests, times, active)
    assert [d.queue == "urgent" for d in decided if d is not None] == [b < 0.3 for b in buckets]
    assert any(b < 0.3 for b in buckets) and not all(b < 0.3 for b in buckets)
    # The same key lands in the same bucket, whatever else the request holds; no key: the whole request.
    assert canary_bucket("input.customer", {"customer": "c1", "x": 1}, {}) == canary_bucket(
        "input.customer", {"customer": "c1"}, {"p": 2}
    )
    assert canary_bucket(None, {"customer": "c1", "x": 1}, {}) != canary_bucket(None, {"customer": "c1"}, {})
    assert canary_bucket("output.intent", {}, {"intent": "card"}) == canary_bucket(
        "output.intent", {"a": 1}, {"intent": "card"}
    )


def test_a_rule_set_or_none_is_an_active_with_it_live() -> None:
    rules = _rules(LIVE)
    assert Active.of(rules) == Active(live=rules)
    assert Active.of(None) == Active()
    canary = Active(live=rules, candidate=_rules(CANDIDATE), candidate_mode="canary", canary=0.5)
    assert Active.of(canary) is canary
