"""Every expectation kind, passing and failing, on outputs; the fields mapping; behaviour checks."""

from __future__ import annotations

from typing import Any

import pytest

from shipway.errors import SuiteError
from shipway.expect.cases import Case, Direction, Failed, Invariance
from shipway.expect.parsing import specs
from shipway.validation import Fields, parse_expectations

OUTPUT: dict[str, Any] = {
    "intent": "card_arrival",
    "probability": 0.7,
    "alternatives": [
        {"intent": "card_delivery_estimate", "probability": 0.2},
        {"intent": "lost_or_stolen_card", "probability": 0.05},
        {"intent": "card_linking", "probability": 0.01},
    ],
    "results": [{"id": "doc-a", "score": 3}, {"id": "doc-b", "score": 2}, {"id": "doc-c", "score": 1}],
    "decision": {"queue": "urgent", "review": False, "fired": ["urgent-cards"]},
}

CASES: list[tuple[dict[str, Any], bool, str]] = [
    ({"label": "card_arrival"}, True, "label is 'card_arrival' (0.70)"),
    (
        {"label": "lost_or_stolen_card"},
        False,
        "label is 'card_arrival' (0.70); 'lost_or_stolen_card' is ranked 3 of 4 (0.05)",
    ),
    ({"label": "age_limit"}, False, "'age_limit' is not among the 4 ranked"),
    (
        {"label_in_top_k": {"label": "lost_or_stolen_card", "k": 3}},
        True,
        "'lost_or_stolen_card' is ranked 3 of 4 (0.05)",
    ),
    ({"label_in_top_k": {"label": "card_arrival", "k": 1}}, True, "'card_arrival' is ranked 1 of 4 (0.70)"),
    ({"label_in_top_k": {"label": "card_linking", "k": 2}}, False, "'card_linking' is ranked 4 of 4 (0.01)"),
    ({"label_in_top_k": {"label": "age_limit", "k": 4}}, False, "'age_limit' is not among the 4 ranked"),
    ({"probability_at_least": 0.5}, True, "label is 'card_arrival' (0.70)"),
    ({"probability_at_least": 0.9}, False, "label is 'card_arrival' (0.70)"),
    ({"probability_at_least": {"label": "card_delivery_estimate", "value": 0.1}}, True, "ranked 2 of 4 (0.20)"),
    ({"probability_at_least": {"label": "card_delivery_estimate", "value": 0.3}}, False, "ranked 2 of 4 (0.20)"),
    ({"probability_at_least": {"label": "age_limit", "value": 0.01}}, False, "counted as probability 0"),
    ({"item_in_top_k": {"item": "doc-b", "k": 2, "list": "results"}}, True, "'doc-b' is at position 2 of 3 in results"),
    (
        {"item_in_top_k": {"item": "doc-c", "k": 2, "list": "results"}},
        False,
        "'doc-c' is at position 3 of 3 in results",
    ),
    (
        {"item_in_top_k": {"item": "doc-z", "k": 2, "list": "results"}},
        False,
        "'doc-z' is not among the 3 items in results",
    ),
    ({"item_in_top_k": {"item": "lost_or_stolen_card", "k": 2}}, True, "at position 2 of 3 (0.05)"),  # default: topk
    ({"item_in_top_k": {"item": "doc-a", "k": 1, "list": "nothing"}}, False, "the output has no list at 'nothing'"),
    ({"item_absent": {"item": "doc-z", "list": "results"}}, True, "'doc-z' is not among the 3 items"),
    ({"item_absent": {"item": "doc-a", "list": "results"}}, False, "'doc-a' is at position 1 of 3"),
    ({"item_absent": {"item": "doc-c", "k": 2, "list": "results"}}, True, "'doc-c' is at position 3 of 3"),
    ({"queue": "urgent"}, True, "routed to queue 'urgent'"),
    ({"queue": "general"}, False, "routed to queue 'urgent'"),
    ({"field": {"path": "decision.review", "equals": False}}, True, "decision.review is False"),
    ({"field": {"path": "decision.fired.0", "equals": "urgent-cards"}}, True, "decision.fired.0 is 'urgent-cards'"),
    ({"field": {"path": "alternatives.0.intent", "equals": "card_linking"}}, False, "is 'card_delivery_estimate'"),
    ({"field": {"path": "intent", "matches": "^card_"}}, True, "intent is 'card_arrival'"),
    ({"field": {"path": "intent", "matches": "^lost"}}, False, "intent is 'card_arrival'"),
    ({"field": {"path": "probability", "matches": r"^0\.7$"}}, True, "probability is 0.7"),
    (
        {"field": {"path": "nope", "equals": 1}},
        False,
        "the output has no field 'nope'; its fields are intent, probability",
    ),
]


@pytest.mark.parametrize(
    ("spec", "passed", "message"), CASES, ids=[f"{next(iter(c[0]))}-{i}" for i, c in enumerate(CASES)]
)
def test_expectation(spec: dict[str, Any], passed: bool, message: str) -> None:
    [expectation] = parse_expectations(spec)
    check = expectation.check(OUTPUT, Fields())
    assert check.passed is passed, check
    assert message in check.message
    assert check.expectation == expectation.describe()


def test_queue_without_rules_says_why() -> None:
    [expectation] = parse_expectations({"queue": "urgent"})
    check = expectation.check({"intent": "card_arrival", "probability": 0.9}, Fields())
    assert not check.passed
    assert "the output has no decision.queue" in check.message
    assert "routing to a queue needs rules" in check.message


def test_fields_mapping_renames_and_defaults() -> None:
    output = {"prediction": {"name": "refund", "p": 0.6}, "ranked": [{"slug": "a"}, {"slug": "b"}], "route": {"q": "x"}}
    fields = Fields(label="prediction.name", probability="prediction.p", topk="ranked", key="slug", queue="route.q")
    expectations = parse_expectations(
        {"label": "refund", "probability_at_least": 0.5, "item_in_top_k": {"item": "b", "k": 2}, "queue": "x"}
    )
    assert all(e.check(output, fields).passed for e in expectations)
    # Defaults: label or intent; score or probability; alternatives.
    assert parse_expectations({"label": "y"})[0].check({"label": "y", "score": 0.3}, Fields()).passed
    assert parse_expectations({"probability_at_least": 0.3})[0].check({"label": "y", "score": 0.3}, Fields()).passed
    # A plain label output (predict returns a string) is its own label.
    assert parse_expectations({"label": "spam"})[0].check("spam", Fields()).passed


def test_missing_label_names_what_was_looked_for() -> None:
    check = parse_expectations({"label": "a"})[0].check({"category": "a"}, Fields())
    assert not check.passed
    assert "no label field (looked for intent or label); its fields are category" in check.message
    assert "`fields: {label: <path>}`" in check.message


def test_alternatives_that_repeat_the_label_are_not_counted_twice() -> None:
    output = {"label": "a", "alternatives": [{"label": "a"}, {"label": "b"}]}
    assert parse_expectations({"label_in_top_k": {"label": "b", "k": 2}})[0].check(output, Fields()).passed


def outputs(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"label": label, "probability": p, "alternatives": []} for label, p in pairs]


def test_invariance() -> None:
    same = Invariance([{"t": 1}, {"t": 2}])
    base, *variants = outputs(("a", 0.9), ("a", 0.5), ("a", 0.8))
    assert same.evaluate(base, variants, Fields())[0].passed
    base, *variants = outputs(("a", 0.9), ("a", 0.85), ("b", 0.6))
    [check] = same.evaluate(base, variants, Fields())
    assert not check.passed
    assert check.message == "variant 2 {'t': 2} is labelled 'b' (0.60), not 'a' (0.90)"
    steady = Invariance([{"t": 1}], tolerance=0.1)
    base, variant = outputs(("a", 0.9), ("a", 0.7))
    [check] = steady.evaluate(base, [variant], Fields())
    assert not check.passed and "moved the probability of 'a' by -0.20 (0.90 -> 0.70), more than 0.1" in check.message
    base, variant = outputs(("a", 0.9), ("a", 0.85))
    assert steady.evaluate(base, [variant], Fields())[0].passed


def test_direction() -> None:
    up = Direction([{"t": 1}], raises=True)
    base, variant = outputs(("a", 0.5), ("a", 0.7))
    assert up.evaluate(base, [variant], Fields())[0].passed
    base, variant = outputs(("a", 0.5), ("a", 0.4))
    [check] = up.evaluate(base, [variant], Fields())
    assert not check.passed and "changed the probability of 'a' from 0.500 to 0.400 (-0.100)" in check.message
    # The probability of a named label: not ranked counts as 0.
    down = Direction([{"t": 1}], raises=False, label="a", by=0.3)
    base, variant = outputs(("a", 0.5), ("b", 0.9))
    assert down.evaluate(base, [variant], Fields())[0].passed
    base, variant = outputs(("a", 0.5), ("a", 0.3))
    assert not down.evaluate(base, [variant], Fields())[0].passed  # lowered, but by less than 0.3
    # A numeric field.
    risk = Direction([{"t": 1}], raises=True, score="risk.score")
    assert risk.evaluate({"risk": {"score": 1}}, [{"risk": {"score": 2}}], Fields())[0].passed
    [check] = risk.evaluate({"risk": {"score": 1}}, [{"risk": {}}], Fields())
    assert not check.passed and "no number at 'risk.score'" in check.message


def test_case_with_a_failed_output_reports_the_service_error() -> None:
    case = Case("c", {"t": 0}, parse_expectations({"label": "a"}), Invariance([{"t": 1}]))
    [check] = case.evaluate([{"label": "a"}, Failed("HTTP 500: boom")], Fields())
    assert not check.passed and check.message == "the service failed on variant 1: HTTP 500: boom"


RANGES: list[tuple[dict[str, Any], bool, str]] = [
    ({"score": {"at_least": 0.5}}, True, "probability is 0.7"),
    ({"score": {"below": 0.5}}, False, "probability is 0.7"),
    ({"score": {"above": 0.6, "at_most": 0.7}}, True, "probability is 0.7"),
    ({"score": {"above": 0.7}}, False, "probability is 0.7"),  # strict
    ({"field": {"path": "alternatives.0.probability", "at_least": 0.1, "below": 0.3}}, True, "is 0.2"),
    ({"field": {"path": "results.2.score", "above": 1}}, False, "results.2.score is 1"),
    ({"field": {"path": "intent", "at_least": 1}}, False, "intent is 'card_arrival', not a number"),
    ({"field": {"path": "nope", "at_least": 1}}, False, "the output has no field 'nope'"),
]


@pytest.mark.parametrize(("spec", "passed", "message"), RANGES)
def test_range_expectations(spec: dict[str, Any], passed: bool, message: str) -> None:
    [expectation] = parse_expectations(spec)
    check = expectation.check(OUTPUT, Fields())
    assert check.passed is passed, check
    assert message in check.message
    # Written back, the spec parses to the same expectation (what POST /explain accepts).
    assert parse_expectations(specs([expectation])) == [expectation]


def test_a_score_output_is_described_by_its_score_not_a_missing_label() -> None:
    output = {"score": 0.83}
    [at_least] = parse_expectations({"probability_at_least": 0.5})
    assert at_least.check(output, Fields()).message == "score is 0.83"
    [below] = parse_expectations({"score": {"below": 0.5}})
    check = below.check(output, Fields())
    assert not check.passed and check.message == "score is 0.83" and check.expectation == "score < 0.5"
    missing = below.check({"label": "x"}, Fields()).message
    assert "the output has no score (looked for probability or score)" in missing


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"score": {"at_least": 0.9, "below": 0.2}}, "is empty: its lower bound 0.9 is above its upper bound 0.2"),
        ({"score": {"at_least": 0.1, "above": 0.2}}, "needs a lower bound (at_least or above), an upper bound"),
        ({"score": {}}, "it has none"),
        ({"score": {"under": 0.2}}, "`score` has no option 'under'"),
        ({"score": {"below": "low"}}, "`below` must be a number, not 'low'"),
        ({"field": {"path": "x", "equals": 1, "below": 2}}, "takes `equals`, `matches` or a range, not both"),
    ],
)
def test_bad_ranges_say_what_to_write(spec: dict[str, Any], error: str) -> None:
    with pytest.raises(SuiteError) as caught:
        parse_expectations(spec)
    assert error in str(caught.value)
