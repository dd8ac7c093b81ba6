"""Decision tables: cells (DMN unary tests), every hit policy with its DMN meaning, outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipway.errors import RulesError
from shipway.rules import Decision, load_rules


def table(policy: str, inputs: list[str], outputs: list[Any], rows: str, extra: str = "") -> str:
    return (
        "default: {queue: none}\n"
        "rules:\n"
        "  - table:\n"
        "      name: t\n"
        f"      hit_policy: {policy}\n"
        f"{extra}"
        f"      inputs: {json.dumps(inputs)}\n"
        f"      outputs: {json.dumps(outputs)}\n"
        f"      rows: |\n" + "".join(f"        {line}\n" for line in rows.strip().splitlines())
    )


def decide(text: str, output: dict[str, Any], request: dict[str, Any] | None = None) -> Decision:
    return load_rules(text).decide(request or {}, output, {})


@pytest.mark.parametrize(
    ("cell", "value", "expected"),
    [
        ("-", None, True),
        ("-", "anything", True),
        ("card_arrival", "card_arrival", True),
        ('"card_arrival"', "card_arrival", True),
        ("'card_arrival'", "card_arrival", True),
        ("card_arrival", "age_limit", False),
        ('"a", "b", c', "c", True),
        ('"a", "b"', "d", False),
        ('"a, b", c', "a, b", True),
        ('not("a", "b")', "c", True),
        ('not("a", "b")', "a", False),
        ('not("a")', None, True),
        ("null", None, True),
        ("null", 1, False),
        ("not(null)", 1, True),
        ("< 0.5", 0.4, True),
        ("< 0.5", 0.5, False),
        ("<= 0.5", 0.5, True),
        ("> 0.5", 0.5, False),
        (">= 0.5", 0.5, True),
        ("!= 3", 4, True),
        ("!= 3", 3, False),
        ("!= 3", None, False),
        ("= 3", 3, True),
        ("3", 3, True),
        ("3", 3.0, True),
        ("-1.5", -1.5, True),
        ("[0.2..0.8]", 0.2, True),
        ("[0.2..0.8]", 0.8, True),
        ("(0.2..0.8)", 0.2, False),
        ("]0.2..0.8[", 0.8, False),
        ("]0.2..0.8[", 0.5, True),
        ("[0.2..0.8)", 0.8, False),
        ("(0.2..0.8]", 0.8, True),
        ("[0.2..0.8]", None, False),
        ("< 0.1, > 0.9", 0.95, True),
        ("< 0.1, [0.4..0.6]", 0.5, True),
        ("< 0.1, [0.4..0.6]", 0.3, False),
        ("not(< 0.5)", 0.7, True),
        ("not([0.2..0.8])", 0.5, False),
        ("true", True, True),
        ("false", True, False),
        ("< output.limit", 0.5, True),
        ("[output.low..output.limit]", 0.6, True),
        ("[output.low..output.limit]", 0.8, False),
        ("< output.nothing", 0.5, False),
    ],
)
def test_input_cells(cell: str, value: Any, expected: bool) -> None:
    text = table("first", ["output.v"], ["queue"], f"{cell} | hit")
    output = {"limit": 0.7, "low": 0.1} if value is None else {"v": value, "limit": 0.7, "low": 0.1}
    assert (decide(text, output).queue == "hit") is expected


def test_rows_as_yaml_lists_with_unquoted_intervals() -> None:
    text = """
rules:
  - table:
      hit_policy: first
      inputs: [output.intent, output.p]
      outputs: [queue, set.score]
      rows:
        - [card_arrival, [0.5..1], urgent, 1]
        - ["card_arrival, age_limit", "< 0.5", review, 0.5]
        - ['-', '-', general, null]
        - "x | - | other | 2"
"""
    rules = load_rules(text)
    assert rules.decide({}, {"intent": "card_arrival", "p": 0.7}, {}).queue == "urgent"
    d = rules.decide({}, {"intent": "age_limit", "p": 0.2}, {})
    assert (d.queue, d.set, d.fired) == ("review", {"score": 0.5}, ["table#1#2"])
    assert rules.decide({}, {"intent": "x", "p": 0.7}, {}).set == {}


def test_first_takes_the_first_match_in_row_order() -> None:
    text = table("first", ["output.p"], ["queue"], "< 0.5 | low\n< 0.8 | mid\n- | high")
    assert [decide(text, {"p": p}).fired for p in (0.1, 0.6, 0.9)] == [["t#1"], ["t#2"], ["t#3"]]
    assert decide(text, {"p": 0.6}).queue == "mid"


def test_no_match_leaves_the_decision_alone() -> None:
    d = decide(table("unique", ["output.p"], ["queue"], "< 0.5 | low"), {"p": 0.9})
    assert (d.queue, d.fired) == ("none", [])


def test_unique_with_disjoint_rows() -> None:
    text = table("unique", ["output.intent", "output.p"], ["queue"], "a | < 0.5 | x\na | >= 0.5 | y\nnot(a) | - | z")
    assert [decide(text, {"intent": i, "p": p}).queue for i, p in (("a", 0.1), ("a", 0.9), ("b", 0.1))] == [
        "x",
        "y",
        "z",
    ]
    assert "elif" in load_rules(text).python  # proven disjoint: compiled as first-hit


def test_unique_broken_at_run_time_is_an_error_decision() -> None:
    # The cells compare with fields, so overlaps can only be seen at run time.
    text = table("unique", ["output.p"], ["queue"], "< output.a | x\n< output.b | y")
    d = decide(text, {"p": 0.1, "a": 0.5, "b": 0.6})
    assert d.queue == "none" and d.review and d.fired == []
    assert d.review_reason == "rules error: table t (hit_policy unique): rows 1, 2 all match"
    assert d.errors == (d.review_reason,)
    ok = decide(text, {"p": 0.55, "a": 0.5, "b": 0.6})
    assert (ok.queue, ok.review, ok.errors, ok.fired) == ("y", False, (), ["t#2"])


def test_any_allows_overlaps_that_agree() -> None:
    text = table("any", ["output.p"], ["queue"], "< 0.5 | low\n< 0.3 | low\n>= 0.5 | high")
    assert decide(text, {"p": 0.1}).queue == "low"
    assert decide(text, {"p": 0.7}).queue == "high"
    with pytest.raises(RulesError, match="rows 1 and 2 of table 't' can both match \\(with different outputs\\)"):
        load_rules(table("any", ["output.p"], ["queue"], "< 0.5 | low\n< 0.3 | other"))
    # Unknown at load time: checked at run time.
    runtime = table("any", ["output.p"], ["queue"], "< output.a | low\n< output.b | other")
    assert decide(runtime, {"p": 0.1, "a": 0.5, "b": 0.6}).errors
    agree = table("any", ["output.p"], ["queue"], "< output.a | low\n< output.b | low")
    assert decide(agree, {"p": 0.1, "a": 0.5, "b": 0.6}).queue == "low"


def test_priority_picks_the_highest_output_value() -> None:
    outputs = [{"name": "queue", "values": ["urgent", "review", "general"]}]
    text = table(
        "priority",
        ["output.intent", "output.p"],
        outputs,
        "- | - | general\n- | < 0.5 | review\ncard_arrival | - | urgent\nage_limit | - | general",
    )
    assert decide(text, {"intent": "card_arrival", "p": 0.1}).fired == ["t#3"]
    assert decide(text, {"intent": "age_limit", "p": 0.1}).queue == "review"
    d = decide(text, {"intent": "age_limit", "p": 0.9})
    assert (d.queue, d.fired) == ("general", ["t#1"])  # ties go to row order


def test_collect_lists_and_aggregates() -> None:
    rows = "< 0.5 | 1\n< 0.8 | 2\n- | 4"
    lists = table("collect", ["output.p"], ["set.tags"], rows)
    d = decide(lists, {"p": 0.1})
    assert (d.set, d.fired) == ({"tags": [1, 2, 4]}, ["t#1", "t#2", "t#3"])
    for aggregation, expected in (("sum", 7), ("count", 3), ("min", 1), ("max", 4)):
        text = table("collect", ["output.p"], ["set.score"], rows, f"      aggregation: {aggregation}\n")
        assert decide(text, {"p": 0.1}).set == {"score": expected}
    assert decide(table("c+", ["output.p"], ["set.score"], rows), {"p": 0.6}).set == {"score": 6}
    assert decide(table("C#", ["output.p"], ["set.score"], rows), {"p": 0.9}).set == {"score": 1}
    none = table("collect", ["output.p"], ["set.score"], "< 0.5 | 1", "      aggregation: sum\n")
    assert decide(none, {"p": 0.9}).set == {}
    count = table("collect", ["output.p"], ["set.score"], "< 0.5 | 1", "      aggregation: count\n")
    assert decide(count, {"p": 0.9}).set == {"score": 0}


def test_rule_order_collects_in_row_order_and_skips_dashes() -> None:
    text = table("rule_order", ["output.p"], ["set.tags", "set.notes"], "- | b | -\n< 0.5 | a | low\n- | c | any")
    d = decide(text, {"p": 0.1})
    assert d.set == {"tags": ["b", "a", "c"], "notes": ["low", "any"]}


def test_outputs_cover_every_action() -> None:
    text = "default: {queue: general, answer: {intent: unknown}}\n" + table(
        "first", ["output.p"], ["queue", "review", "reason", "fallback", "set.p"], "< 0.1 | - | true | tiny | true | 0"
    ).split("rules:\n", 1)[1].join(["rules:\n", ""])
    rules = load_rules(text)
    d = rules.decide({}, {"p": 0.05, "intent": "x"}, {})
    assert (d.queue, d.review, d.review_reason, d.fallback, d.set) == ("general", True, "tiny", True, {"p": 0})
    assert rules.apply({"p": 0.05, "intent": "x"}, d) == {"intent": "unknown", "p": 0}


def test_output_cells_can_be_expressions() -> None:
    text = table("first", ["output.p"], ["set.p", "queue"], '- | output.p * 2 | lower(output.q) + "-q"')
    assert decide(text, {"p": 0.25, "q": "HIGH"}).set == {"p": 0.5}
    assert decide(text, {"p": 0.25, "q": "HIGH"}).queue == "high-q"
    assert decide(text, {"p": 0.25}).queue == "none"  # missing: left unchanged


def test_inputs_are_expressions() -> None:
    text = table(
        "first", ["length(input.text)", "lower(input.text)"], ["queue"], '> 10 | - | long\n- | "hi" | greeting'
    )
    assert decide(text, {}, {"text": "a long message"}).queue == "long"
    assert decide(text, {}, {"text": "HI"}).queue == "greeting"


def test_tables_and_rules_mix_in_order() -> None:
    text = """
default: {queue: general}
rules:
  - {name: first, when: output.p < 0.5, then: {queue: low}}
  - table:
      name: t
      hit_policy: first
      inputs: [output.intent]
      outputs: [queue]
      rows: [[card_arrival, urgent]]
  - {name: last, when: output.intent == "x", then: {review: true}}
"""
    d = decide(text, {"p": 0.1, "intent": "card_arrival"})
    assert (d.queue, d.fired) == ("urgent", ["first", "t#1"])


# -- the compiled tables agree with a reference -------------------------------

CELLS = st.one_of(
    st.just(("any",)),
    st.tuples(st.just("cmp"), st.sampled_from(["<", "<=", ">", ">=", "!="]), st.sampled_from([0, 1, 2])),
    st.tuples(st.just("interval"), st.sampled_from([0, 1]), st.sampled_from([1, 2, 3]), st.booleans(), st.booleans()),
    st.tuples(st.just("set"), st.lists(st.sampled_from([0, 1, 2, 3]), min_size=1, max_size=3), st.booleans()),
    st.just(("null",)),
)


def render_cell(cell: tuple[Any, ...]) -> str:
    if cell[0] == "any":
        return "-"
    if cell[0] == "cmp":
        return f"{cell[1]} {cell[2]}"
    if cell[0] == "interval":
        return f"{'[' if cell[3] else '('}{cell[1]}..{cell[2]}{']' if cell[4] else ')'}"
    if cell[0] == "set":
        body = ", ".join(map(str, cell[1]))
        return f"not({body})" if cell[2] else body
    return "null"


def matches(cell: tuple[Any, ...], v: Any) -> bool:
    if cell[0] == "any":
        return True
    if cell[0] == "null":
        return v is None
    if cell[0] == "set":
        inside = v is not None and v in cell[1]
        return not inside if cell[2] else inside
    if v is None:
        return False
    if cell[0] == "cmp":
        return {"<": v < cell[2], "<=": v <= cell[2], ">": v > cell[2], ">=": v >= cell[2], "!=": v != cell[2]}[cell[1]]
    low_ok = v >= cell[1] if cell[3] else v > cell[1]
    high_ok = v <= cell[2] if cell[4] else v < cell[2]
    return low_ok and high_ok


@settings(max_examples=200, deadline=None)
@given(
    policy=st.sampled_from(["first", "priority", "collect", "rule_order", "collect sum", "collect count"]),
    rows=st.lists(st.tuples(CELLS, CELLS, st.integers(0, 3)), min_size=1, max_size=8),
    values=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.one_of(st.none(), st.integers(0, 3))), max_size=10
    ),
)
def test_compiled_tables_agree_with_the_reference(
    policy: str, rows: list[tuple[Any, Any, int]], values: list[tuple[Any, Any]]
) -> None:
    single = policy in ("first", "priority")
    output: Any = {"name": "queue", "values": ["0", "1", "2", "3"]} if policy == "priority" else "queue"
    aggregation = ""
    if policy.startswith("collect "):
        policy, aggregation = "collect", f"      aggregation: {policy.split()[1]}\n"
    if not single:
        output = "set.out"
    lines = "\n".join(
        f"{render_cell(a)} | {render_cell(b)} | {json.dumps(str(n)) if single else n}" for a, b, n in rows
    )
    rules = load_rules(table(policy, ["output.a", "output.b"], [output], lines, aggregation))
    for a, b in values:
        hits = [(i, n) for i, (ca, cb, n) in enumerate(rows) if matches(ca, a) and matches(cb, b)]
        d = rules.decide({}, {k: v for k, v in (("a", a), ("b", b)) if v is not None}, {})
        if policy == "first":
            expected = (str(hits[0][1]), [f"t#{hits[0][0] + 1}"]) if hits else ("none", [])
            assert (d.queue, d.fired) == expected
        elif policy == "priority":
            best = sorted(hits, key=lambda h: (h[1], h[0]))
            expected = (str(best[0][1]), [f"t#{best[0][0] + 1}"]) if best else ("none", [])
            assert (d.queue, d.fired) == expected
        else:
            found = [n for _, n in hits]
            assert d.fired == [f"t#{i + 1}" for i, _ in hits]
            if aggregation.endswith("sum\n"):
                assert d.set == ({"out": sum(found)} if found else {})
            elif aggregation.endswith("count\n"):
                assert d.set == {"out": len(found)}
            else:
                assert d.set == {"out": found}
