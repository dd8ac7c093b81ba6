"""The rules expression language: operators, functions, missing values, actions, safety."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shipway.errors import RulesError, ShipwayError
from shipway.rules import Decision, RuleSet, load_rules

OUTPUT = {
    "intent": "card_arrival",
    "probability": 0.42,
    "count": 3,
    "alternatives": [{"intent": "card_linking", "probability": 0.3}, {"intent": "age_limit", "probability": 0.1}],
    "scores": {"card_arrival": 0.42, "age_limit": 0.1},
    "labels": ["a", "b"],
    "flag": True,
}
REQUEST = {"text": "Where is my NEW card?", "country": "UK"}
META = {"request_id": "r-1", "bucket": 7}


def when(expression: str, output: dict[str, Any] | None = None, **kw: Any) -> bool:
    """Whether a rule with this condition fires (no schemas: run-time semantics only)."""
    rules = load_rules(f"rules:\n  - when: {json.dumps(expression)}\n    then: {{queue: hit}}\n", **kw)
    decision = rules.decide(REQUEST, OUTPUT if output is None else output, META)
    assert not decision.errors, decision.errors
    return decision.queue == "hit"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('output.intent == "card_arrival"', True),
        ('output.intent != "card_arrival"', False),
        ("output.probability < 0.5", True),
        ("output.probability <= 0.42", True),
        ("output.probability > 0.42", False),
        ("output.probability >= 0.42", True),
        ("0.2 <= output.probability < 0.5", True),
        ("0.5 <= output.probability < 0.9", False),
        ("0.1 < output.probability < output.count", True),
        ('output.intent == "card_arrival" and output.probability > 0.4', True),
        ('output.intent == "x" or output.probability > 0.4', True),
        ("not output.probability > 0.4", False),
        ("output.flag", True),
        ("not output.flag", False),
        ('output.intent in ["card_arrival", "x"]', True),
        ('output.intent not in ["card_arrival", "x"]', False),
        ('output.intent in ("x", "y")', False),
        ('"NEW" in input.text', True),
        ('"a" in output.labels', True),
        ('"z" not in output.labels', True),
        ('"card_arrival" in output.scores', True),
        ('contains(input.text, "card")', True),
        ('contains(output.labels, "b")', True),
        ('startswith(input.text, "Where")', True),
        ('endswith(input.text, "?")', True),
        ('lower(input.text) == "where is my new card?"', True),
        ('upper(input.country) == "UK"', True),
        ("length(input.text) == 21", True),
        ("len(output.alternatives) == 2", True),
        ("output.count + 1 == 4", True),
        ("output.count - 1 == 2", True),
        ("output.count * 2 == 6", True),
        ("output.count / 2 == 1.5", True),
        ("output.count // 2 == 1", True),
        ("output.count % 2 == 1", True),
        ("output.count ** 2 == 9", True),
        ("-output.count == -3", True),
        ('input.country + "!" == "UK!"', True),
        ("abs(-output.count) == 3", True),
        ("round(output.probability, 1) == 0.4", True),
        ("round(output.probability) == 0", True),
        ("min(output.count, 1, output.nothing) == 1", True),
        ("max(output.count, 10) == 10", True),
        ("(1 if output.flag else 2) == 1", True),
        ('output.alternatives[0].intent == "card_linking"', True),
        ('output.alternatives[-1].intent == "age_limit"', True),
        ("output.alternatives[1].probability < output.alternatives[0].probability", True),
        ('output.scores["age_limit"] == 0.1', True),
        ("output.scores[output.intent] == 0.42", True),
        ("output.alternatives[output.count - 2].probability == 0.1", True),
        ('meta.request_id == "r-1"', True),
        ("meta.bucket % 10 < 8", True),
        ("true", True),
        ("false", False),
    ],
)
def test_operators_and_functions(expression: str, expected: bool) -> None:
    assert when(expression) is expected


def test_matches_is_re2() -> None:
    pytest.importorskip("re2")
    assert when(r'matches(input.text, "^Where\\s+is")')
    assert not when('matches(input.text, "^card")')
    with pytest.raises(RulesError, match="invalid regular expression"):
        when('matches(input.text, "(a")')
    with pytest.raises(RulesError, match="pattern written as a"):
        when("matches(input.text, input.country)")
    # Backreferences need backtracking, which RE2 refuses.
    with pytest.raises(RulesError, match="invalid regular expression"):
        when(r'matches(input.text, "(a)\\1")')


def test_matches_without_re2_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "re2", None)  # makes `import re2` raise ImportError
    with pytest.raises(RulesError, match=r"pip install 'shipway\[re2\]'"):
        when('matches(input.text, "a")')


@pytest.mark.parametrize(
    "expression",
    [
        "output.nothing == 1",
        "output.nothing != 1",
        'output.nothing != "x"',
        "output.nothing < 1",
        "output.nothing >= 1",
        "0 <= output.nothing < 1",
        'output.nothing in [1, "x"]',
        'output.nothing not in [1, "x"]',
        "output.nothing in output.labels",
        "output.nothing not in output.labels",
        "output.nothing == output.also_nothing",
        "output.nothing != output.also_nothing",
        "output.nothing",
        'contains(output.nothing, "x")',
        'startswith(output.nothing, "x")',
        'matches(output.nothing, "x")',
        'lower(output.nothing) == "x"',
        "output.nothing + 1 > 0",
        "output.count / 0 == 0",
        "output.count // 0 == 0",
        "output.count % 0 == 0",
        "output.count / (output.count - 3) > 0",
        "output.alternatives[5].intent == 'x'",
        "output.alternatives[0].nothing == 'x'",
        "output.intent.deeper == 'x'",
        "output.probability[0] == 0.42",
        "output.nothing * 2 > 0",
        "abs(output.nothing) >= 0",
    ],
)
def test_a_comparison_with_a_missing_value_is_false(expression: str) -> None:
    assert when(expression) is False


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("missing(output.nothing)", True),
        ("missing(output.intent)", False),
        ("present(output.intent)", True),
        ("present(output.nulled)", False),
        ("missing(output.nulled)", True),
        ("not (output.nothing < 1)", True),
        ("not output.nothing", True),
        ('coalesce(output.nothing, "fallback") == "fallback"', True),
        ('coalesce(output.intent, "fallback") == "card_arrival"', True),
        ("coalesce(output.nothing, output.nulled, 3) == 3", True),
        ("missing(output.count / 0)", False),  # missing() takes a field; checked below
    ],
)
def test_missing_value_functions(expression: str, expected: bool) -> None:
    output = {**OUTPUT, "nulled": None}
    if expression.startswith("missing(output.count /"):
        with pytest.raises(RulesError, match=r"missing\(\) takes a field"):
            when(expression, output)
        return
    assert when(expression, output) is expected


def test_division_by_zero_gives_missing_not_a_crash() -> None:
    rules = load_rules(
        "rules:\n  - then:\n      set:\n        ratio: output.count / output.zero\n        other: coalesce(output.count / 0, -1)\n"
    )
    decision = rules.decide({}, {"count": 3, "zero": 0}, {})
    assert decision.set == {"other": -1}
    assert decision.errors == ()


# -- actions -------------------------------------------------------------------


def test_every_action() -> None:
    rules = load_rules(
        """
version: v7
default: {queue: general, answer: {intent: unknown, probability: 0.0}}
rules:
  - name: route
    when: output.intent == "card_arrival"
    then: {queue: urgent}
  - name: flag
    when: output.probability < 0.5
    then: {review: true, reason: low confidence}
  - name: boost
    when: output.intent == "card_arrival"
    then: {set: {probability: output.probability * 2, note: checked, source: '"the rules"', missing_one: output.nothing}}
  - name: give-up
    when: output.probability < 0.1
    then: {fallback: true}
"""
    )
    d = rules.decide({}, {"intent": "card_arrival", "probability": 0.3}, {})
    assert d == Decision(
        queue="urgent",
        review=True,
        review_reason="low confidence",
        fallback=False,
        set={"probability": 0.6, "note": "checked", "source": "the rules"},
        fired=["route", "flag", "boost"],
        rules_version="v7",
    )
    assert rules.apply({"intent": "card_arrival", "probability": 0.3}, d) == {
        "intent": "card_arrival",
        "probability": 0.6,
        "note": "checked",
        "source": "the rules",
    }
    low = rules.decide({}, {"intent": "age_limit", "probability": 0.05}, {})
    assert low.fallback and low.queue == "general" and low.fired == ["flag", "give-up"]
    assert rules.apply({"intent": "age_limit", "probability": 0.05}, low) == {"intent": "unknown", "probability": 0.0}
    plain = rules.decide({}, {"intent": "age_limit", "probability": 0.9}, {})
    assert plain == Decision(queue="general", rules_version="v7")


def test_later_rules_override_and_review_false_clears() -> None:
    rules = load_rules(
        """
default: {queue: general}
rules:
  - {name: a, then: {queue: first, review: true, reason: why}}
  - {name: b, when: output.x > 1, then: {queue: second, review: false}}
  - {name: c, when: output.x > 2, then: {fallback: true}}
  - {name: d, when: output.x > 3, then: {fallback: false}}
"""
    )
    assert rules.decide({}, {"x": 0}, {}).queue == "first"
    d = rules.decide({}, {"x": 2}, {})
    assert (d.queue, d.review, d.review_reason, d.fired) == ("second", False, None, ["a", "b"])
    assert rules.decide({}, {"x": 3}, {}).fallback is True
    assert rules.decide({}, {"x": 4}, {}).fallback is False


def test_stop_ends_the_evaluation() -> None:
    rules = load_rules(
        """
rules:
  - {name: urgent, when: output.x > 1, then: {queue: urgent}, stop: true}
  - {name: later, then: {queue: later}}
  - table:
      hit_policy: first
      inputs: [output.x]
      outputs: [set.seen]
      rows: [["-", "true"]]
"""
    )
    assert rules.decide({}, {"x": 2}, {}).fired == ["urgent"]
    assert rules.decide({}, {"x": 0}, {}).fired == ["later", "table#3#1"]


def test_version_defaults_to_the_file_hash() -> None:
    import hashlib

    text = "rules:\n  - then: {queue: a}\n"
    rules = load_rules(text)
    assert rules.version == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert rules.decide({}, {}, {}).rules_version == rules.version
    assert rules.source == text


def test_load_from_a_path_and_from_a_path_string(tmp_path: Any) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: x\nrules:\n  - then: {queue: a}\n")
    assert load_rules(path).version == "x"
    assert load_rules(str(path)).filename == str(path)
    assert load_rules(path, filename="r.yaml").filename == "r.yaml"
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def test_inputs_may_be_models_or_missing_meta() -> None:
    class Out(BaseModel):
        intent: str
        probability: float

    rules = load_rules('rules:\n  - when: output.intent == "a" and missing(meta.bucket)\n    then: {queue: x}\n')
    assert rules.decide({}, Out(intent="a", probability=0.1), None).queue == "x"
    assert rules.decide({}, {"intent": "a"}, None).queue == "x"
    assert rules.decide(request={}, output={"intent": "a"}).queue == "x"
    # A bare root is the whole value, for services whose input is plain text.
    plain = load_rules('rules:\n  - when: input == "hello" and missing(input.text)\n    then: {queue: x}\n')
    assert plain.decide("hello", {}).queue == "x"


def test_run_time_errors_are_recorded_not_raised() -> None:
    # Without schemas nothing says output.x is a number; text arrives.
    rules = load_rules(
        "rules:\n  - {name: cmp, when: output.x < 1, then: {queue: low}}\n  - {name: ok, then: {review: true}}\n"
    )
    d = rules.decide({}, {"x": "text"}, {})
    assert d.queue is None and d.fired == ["ok"] and d.review
    assert len(d.errors) == 1 and d.errors[0].startswith("cmp: TypeError")
    # The arithmetic helpers refuse to repeat text (no "a" * 10**9).
    rules = load_rules("rules:\n  - {name: big, then: {set: {y: output.s * output.n}}}\n")
    d = rules.decide({}, {"s": "a", "n": 10**9}, {})
    assert d.set == {} and d.errors and "expected numbers" in d.errors[0]


def test_decide_many_for_backtests() -> None:
    rules = load_rules("default: {queue: general}\nrules:\n  - {when: output.p < 0.5, then: {queue: low}}\n")
    rows: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [({}, {"p": p / 10}, {}) for p in range(10)]
    assert [d.queue for d in rules.decide_many(rows)] == ["low"] * 5 + ["general"] * 5
    assert isinstance(rules, RuleSet) and "RuleSet(" in repr(rules)


def test_literals_are_constants_not_code() -> None:
    nasty = "'); import os; os.system('echo pwned'); ('"
    rules = load_rules(
        f"rules:\n  - when: {json.dumps('input.text == ' + json.dumps(nasty))}\n    then: {{queue: hit}}\n"
    )
    assert rules.decide({"text": nasty}, {}, {}).queue == "hit"
    assert "import os" not in rules.python.replace(repr(nasty), "")


# -- safety --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message", "at"),
    [
        ("input.__class__", "names starting with _ are not allowed", "__class__"),
        ("input.text.__class__.__mro__", "names starting with _", "__mro__"),
        ('__import__("os")', "unknown function '__import__'", "__import__"),
        ('open("/etc/passwd") == 1', "unknown function 'open'", "open"),
        ('eval("1")', "unknown function 'eval'", "eval"),
        ('getattr(input, "text")', "unknown function 'getattr'", "getattr"),
        ("[x for x in output.alternatives]", "comprehensions are not allowed", "["),
        ("(lambda: 1)()", "only the built-in rule functions can be called", "("),
        ("lambda: 1", "lambdas are not allowed", "lambda"),
        ("2 ** 100000 > 1", "exponents must be a number written in the rule", "100000"),
        ("output.p ** output.p > 1", "exponents must be a number written in the rule", "output.p >"),
        ("10 ** 10 ** 10 > 1", "exponents must be a number written in the rule", "10 ** 10 >"),
        ("(x := 1)", "assignments (:=)", "x"),
        ('f"{input.text}" == "a"', "f-strings", "f"),
        ('{"a": 1}', "dict literals", "{"),
        ("output.x in {1, 2}", "set literals", "{"),
        ("input.text[0:5] == 'a'", "slices are not supported", "0"),
        ("input.text.lower() == 'a'", "write lower(x), not x.lower()", "input"),
        ("1 << 100 > 1", "operator << is not supported", "1"),
        ("output.x is None", "use missing(x) or present(x)", "output"),
        ("os.system('x')", "methods cannot be called", "os"),
        ("x == 1", "unknown name 'x'", "x"),
        ("outptu.intent == 1", "unknown name 'outptu' (did you mean output?)", "outptu"),
        ("output.x = 1", "compare with ==, not =", "= 1"),
        ("b'x' == 1", "bytes literals are not allowed", "b"),
        ("1j == 1", "complex literals are not allowed", "1j"),
        ("lower(x=input.text)", "takes no keyword arguments", "lower"),
        ("lower(input.text, 1)", "takes 1 arguments, not 2", "lower"),
        ("[*output.labels]", "unpacking", "*"),
        ("lower", "lower is a function; call it", "lower"),
        ("().__class__", "names starting with _", "__class__"),
        ('"x".join(input)', "methods cannot be called", '"x"'),
        ("1e999 > 1", "out of range", "1e999"),
    ],
)
def test_unsafe_expressions_are_refused_at_load(expression: str, message: str, at: str) -> None:
    text = f"rules:\n  - when: {json.dumps(expression)}\n    then: {{queue: x}}\n"
    with pytest.raises(RulesError) as info:
        load_rules(text)
    assert message in str(info.value)
    (diagnostic,) = info.value.diagnostics
    # `  - when: "` puts the expression's first character in column 12.
    assert (diagnostic.line, diagnostic.column) == (2, 12 + expression.index(at)), str(diagnostic)


def test_sizes_are_bounded() -> None:
    deep = "[" * 60 + "1" + "]" * 60
    with pytest.raises(RulesError, match="nested too deeply"):
        when(deep + " == 1")
    with pytest.raises(RulesError, match="nested too deeply"):
        when("not " * 100 + "true")
    with pytest.raises(RulesError, match="too large"):
        when("output.x in [" + ", ".join(["1"] * 500) + "]")
    with pytest.raises(RulesError, match="characters long"):
        when("output.x == " + json.dumps("a" * 5000))


def test_rules_error_is_a_shipway_error() -> None:
    assert issubclass(RulesError, ShipwayError)


# -- the compiled rules agree with a reference interpreter ---------------------

FIELDS = {"output.p": "num", "output.q": "num", "output.intent": "str", "input.text": "str", "meta.bucket": "num"}
WORDS = ["card_arrival", "age_limit", "x", ""]


def _num_expr() -> st.SearchStrategy[tuple[Any, ...]]:
    leaf = st.one_of(
        st.sampled_from([("field", f) for f, k in FIELDS.items() if k == "num"]),
        st.integers(-3, 3).map(lambda n: ("const", n)),
        st.sampled_from([0.25, 0.5, 1.5]).map(lambda n: ("const", n)),
    )
    return st.recursive(
        leaf,
        lambda inner: st.tuples(st.sampled_from(["+", "-", "*", "/", "%"]), inner, inner).map(lambda t: ("math", *t)),
        max_leaves=3,
    )


def _condition() -> st.SearchStrategy[tuple[Any, ...]]:
    text_field = st.sampled_from([f for f, k in FIELDS.items() if k == "str"])
    atoms = st.one_of(
        st.tuples(st.just("cmp"), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _num_expr(), _num_expr()),
        st.tuples(
            st.just("range"),
            st.sampled_from([-1, 0, 0.5]),
            st.sampled_from(["output.p", "output.q"]),
            st.sampled_from([0.5, 1, 2]),
        ),
        st.tuples(st.just("in"), text_field, st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), st.booleans()),
        st.tuples(st.just("eq"), text_field, st.sampled_from(WORDS), st.booleans()),
        st.tuples(st.just("missing"), st.sampled_from(list(FIELDS)), st.booleans()),
        st.tuples(st.just("starts"), text_field, st.sampled_from(["a", "c", "x"])),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(st.sampled_from(["and", "or"]), inner, inner), st.tuples(st.just("not"), inner)
        ),
        max_leaves=4,
    )


def render(node: tuple[Any, ...]) -> str:
    kind = node[0]
    if kind == "field":
        return node[1]
    if kind == "const":
        return repr(node[1])
    if kind == "math":
        return f"({render(node[2])} {node[1]} {render(node[3])})"
    if kind == "cmp":
        return f"{render(node[2])} {node[1]} {render(node[3])}"
    if kind == "range":
        return f"{node[1]} <= {node[2]} < {node[3]}"
    if kind == "in":
        return f"{node[1]} {'not in' if node[3] else 'in'} {json.dumps(node[2])}"
    if kind == "eq":
        return f"{node[1]} {'!=' if node[3] else '=='} {json.dumps(node[2])}"
    if kind == "missing":
        return f"{'present' if node[2] else 'missing'}({node[1]})"
    if kind == "starts":
        return f"startswith({node[1]}, {json.dumps(node[2])})"
    if kind in ("and", "or"):
        return f"({render(node[1])} {kind} {render(node[2])})"
    return f"(not {render(node[1])})"


def reference(node: tuple[Any, ...], env: dict[str, Any]) -> Any:
    """The documented semantics, written the slow obvious way."""
    kind = node[0]
    if kind == "field":
        return env.get(node[1])
    if kind == "const":
        return node[1]
    if kind == "math":
        a, b = reference(node[2], env), reference(node[3], env)
        if a is None or b is None:
            return None
        if node[1] in "/%" and b == 0:
            return None
        return (
            {"+": a + b, "-": a - b, "*": a * b}.get(node[1])
            if node[1] in "+-*"
            else (a / b if node[1] == "/" else a % b)
        )
    if kind == "cmp":
        a, b = reference(node[2], env), reference(node[3], env)
        if a is None or b is None:
            return False
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node[1]]
    if kind == "range":
        v = env.get(node[2])
        return v is not None and node[1] <= v < node[3]
    if kind == "in":
        v = env.get(node[1])
        if v is None:
            return False
        return (v not in node[2]) if node[3] else (v in node[2])
    if kind == "eq":
        v = env.get(node[1])
        return v is not None and ((v != node[2]) if node[3] else (v == node[2]))
    if kind == "missing":
        return (env.get(node[1]) is not None) is node[2]
    if kind == "starts":
        v = env.get(node[1])
        return isinstance(v, str) and v.startswith(node[2])
    if kind == "and":
        return bool(reference(node[1], env)) and bool(reference(node[2], env))
    if kind == "or":
        return bool(reference(node[1], env)) or bool(reference(node[2], env))
    return not reference(node[1], env)


def _env() -> st.SearchStrategy[dict[str, Any]]:
    maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731
    return st.fixed_dictionaries(
        {
            "output.p": maybe(st.sampled_from([-1, 0, 0.25, 0.5, 1, 1.5, 2])),
            "output.q": maybe(st.integers(-2, 3)),
            "output.intent": maybe(st.sampled_from(WORDS)),
            "input.text": maybe(st.sampled_from(["abc", "card", "x", ""])),
            "meta.bucket": maybe(st.integers(0, 3)),
        }
    )


def split(env: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    roots: dict[str, dict[str, Any]] = {"input": {}, "output": {}, "meta": {}}
    for key, value in env.items():
        root, name = key.split(".")
        if value is not None:
            roots[root][name] = value
    return roots["input"], roots["output"], roots["meta"]


SCHEMAS: dict[str, Any] = {
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    "output_schema": {
        "type": "object",
        "properties": {"p": {"type": "number"}, "q": {"type": "integer"}, "intent": {"type": "string"}},
    },
    "meta_schema": {"type": "object", "properties": {"bucket": {"type": "integer"}}},
}


@settings(max_examples=150, deadline=None)
@given(
    rules=st.lists(
        st.tuples(_condition(), st.sampled_from(["a", "b", None]), st.booleans(), st.booleans()), min_size=1, max_size=5
    ),
    envs=st.lists(_env(), min_size=1, max_size=8),
    typed=st.booleans(),
)
def test_compiled_rules_agree_with_the_reference(
    rules: list[tuple[Any, str | None, bool, bool]], envs: list[dict[str, Any]], typed: bool
) -> None:
    lines = ["default: {queue: none}", "rules:"]
    for i, (condition, queue, review, stop) in enumerate(rules):
        then: dict[str, Any] = {"queue": queue} if queue else {}
        then["review"] = review
        lines.append(
            f"  - name: r{i}\n    when: {json.dumps(render(condition))}\n    then: {json.dumps(then)}\n    stop: {str(stop).lower()}"
        )
    try:
        ruleset = load_rules("\n".join(lines) + "\n", **(SCHEMAS if typed else {}))
    except RulesError as err:
        # Only the type checker may refuse, and only for text compared with numbers: not generated here.
        raise AssertionError(str(err)) from None
    for env in envs:
        queue, review, fired = "none", False, []
        for i, (condition, q, rv, stop) in enumerate(rules):
            if reference(condition, env):
                queue = q or queue
                review = rv
                fired.append(f"r{i}")
                if stop:
                    break
        decision = ruleset.decide(*split(env))
        assert decision.errors == ()
        assert (decision.queue, decision.review, decision.fired) == (queue, review, fired), ruleset.python
