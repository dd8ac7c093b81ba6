"""Load-time checks against the service's schemas, with exact file:line:column; the docs' example."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
from pydantic import BaseModel, TypeAdapter

from shipway.errors import RulesError
from shipway.rules import Diagnostic, RuleSet, load_rules

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "banking77"


def banking77() -> ModuleType:
    spec = importlib.util.spec_from_file_location("banking77_service_for_rules", EXAMPLE / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVICE = banking77()
LABELS = json.loads((EXAMPLE / "data" / "categories.json").read_text())  # what the model can output
SCHEMAS: dict[str, Any] = {
    "input_schema": TypeAdapter(SERVICE.Message).json_schema(),
    "output_schema": TypeAdapter(SERVICE.Intent).json_schema(),
    "labels": LABELS,
}


def diagnostics(text: str, **kw: Any) -> list[str]:
    """Every diagnostic of a file that fails to load, as printed."""
    with pytest.raises(RulesError) as info:
        load_rules(text, **{**SCHEMAS, **kw})
    lines = str(info.value).splitlines()
    assert lines[0].startswith("rules.yaml has ") and "the rules were not loaded" in lines[0]
    assert lines[1:] == [str(d) for d in info.value.diagnostics]
    return lines[1:]


def test_unknown_field_with_did_you_mean() -> None:
    text = """\
rules:
  - name: urgent
    when: output.intnet == "card_arrival"
    then: {queue: urgent}
"""
    assert diagnostics(text) == [
        "rules.yaml:3:11: error: unknown field output.intnet (did you mean output.intent?)",
    ]


def test_unknown_nested_field_and_input_field() -> None:
    text = """\
rules:
  - when: output.alternatives[0].intnt == "card_arrival" or input.txt == "a"
    then: {queue: urgent}
"""
    assert diagnostics(text) == [
        "rules.yaml:2:11: error: unknown field output.alternatives[0].intnt (did you mean output.alternatives[0].intent?)",
        "rules.yaml:2:61: error: unknown field input.txt (did you mean input.text?)",
    ]


def test_type_mismatches() -> None:
    text = """\
rules:
  - when: output.probability < "high"
    then: {queue: a}
  - when: output.intent > 3 or not output.probability
    then: {queue: b}
  - when: lower(output.probability) == "x"
    then: {set: {probability: '"high"'}}
  - when: output.probability
    then: {queue: c}
  - when: output.intent == 0.5 + output.intent
    then: {queue: d}
"""
    assert diagnostics(text) == [
        "rules.yaml:2:11: error: type mismatch: output.probability is a number and 'high' is text, so < is never true",
        "rules.yaml:4:11: error: type mismatch: output.intent is text and 3 is a number, so > is never true",
        "rules.yaml:4:36: error: not needs true/false values, but output.probability is a number; compare it, or use present(...)/missing(...)",
        "rules.yaml:6:17: error: lower() needs text, but output.probability is a number",
        "rules.yaml:7:32: error: set probability: 'high' is text, but output.probability is a number",
        "rules.yaml:8:11: error: the `when` of rule 'rule#4' is a number, not true/false; compare it, e.g. `output.probability == ...`, or test it with present(...)",
        "rules.yaml:10:28: error: + joins text with text or adds numbers; 0.5 is a number",
    ]


def test_label_the_model_never_outputs() -> None:
    text = """\
rules:
  - when: output.intent in ["card_arival", "lost_or_stolen_card"]
    then: {queue: urgent}
  - when: output.alternatives[0].intent != "Compromised_card"
    then: {queue: urgent}
  - table:
      hit_policy: first
      inputs: [output.intent]
      outputs: [queue]
      rows: |
        card_arrival, age_limt | urgent
"""
    assert diagnostics(text) == [
        "rules.yaml:2:29: error: 'card_arival' is not a label the model can output (did you mean card_arrival?); "
        "output.intent holds one of the model's 77 labels",
        "rules.yaml:4:44: error: 'Compromised_card' is not a label the model can output (did you mean compromised_card?); "
        "output.alternatives[0].intent holds one of the model's 77 labels",
        "rules.yaml:11:23: error: 'age_limt' is not a label the model can output (did you mean age_limit?); "
        "output.intent holds one of the model's 77 labels",
    ]


def test_enum_fields_are_checked_without_labels() -> None:
    class Out(BaseModel):
        route: Literal["urgent", "general"]

    text = 'rules:\n  - when: output.route == "urgnt"\n    then: {queue: a}\n'
    assert diagnostics(text, output_schema=TypeAdapter(Out).json_schema(), labels=None) == [
        "rules.yaml:2:27: error: output.route can never be 'urgnt' (did you mean urgent?); its values are general, urgent"
    ]


def test_unreachable_rows_are_warnings() -> None:
    text = """\
rules:
  - table:
      name: routing
      hit_policy: first
      inputs: [output.intent, output.probability]
      outputs: [queue]
      rows: |
        card_arrival, age_limit | -          | urgent
        card_arrival            | < 0.5      | low
        -                       | < 0.5      | review
        -                       | >= 0.5     | general
        compromised_card        | [0.2..0.9] | never
        -                       | [0.9..0.1] | empty
"""
    rules = load_rules(text, **SCHEMAS)
    assert [str(w) for w in rules.warnings] == [
        "rules.yaml:9:9: warning: row 2 of table 'routing' can never fire: row 1 matches everything it matches first",
        "rules.yaml:12:9: warning: row 5 of table 'routing' can never fire: the rows before it match everything it matches",
        "rules.yaml:13:9: warning: row 6 of table 'routing' can never match: one of its cells matches no value",
    ]
    assert all(isinstance(w, Diagnostic) and w.severity == "warning" for w in rules.warnings)


def test_unreachable_rules_after_stop() -> None:
    text = """\
rules:
  - name: urgent
    when: output.intent in ["card_arrival", "compromised_card"]
    then: {queue: urgent}
    stop: true
  - name: arrival
    when: output.intent == "card_arrival" and output.probability > 0.5
    then: {queue: never}
  - name: impossible
    when: output.probability > 0.8 and output.probability < 0.2
    then: {queue: never}
  - name: fine
    when: output.intent == "age_limit"
    then: {queue: fine}
"""
    assert [str(w) for w in load_rules(text, **SCHEMAS).warnings] == [
        "rules.yaml:7:11: warning: rule 'arrival' can never fire: rule 'urgent' (stop: true) fires whenever it would, and stops",
        "rules.yaml:10:11: warning: rule 'impossible' can never fire: its condition is never true",
    ]


def test_overlapping_rows_under_unique() -> None:
    text = """\
rules:
  - table:
      name: routing
      inputs: [output.intent, output.probability]
      outputs: [queue]
      rows:
        - [card_arrival, "< 0.5", urgent]
        - ["card_arrival, age_limit", [0.4..0.8], other]
        - [card_arrival, "> 0.9", x]
"""
    assert diagnostics(text) == [
        "rules.yaml:8:13: error: rows 1 and 2 of table 'routing' can both match (hit_policy unique allows one); "
        "narrow one of them, or use hit_policy first",
    ]


def test_bad_hit_policy_and_table_structure() -> None:
    text = """\
rules:
  - table:
      hit_policy: frist
      inputs: [output.probability]
      outputs: [queue]
      rows: ["< 0.5 | a"]
  - table:
      hit_policy: collect
      aggregation: avg
      inputs: [output.probability]
      outputs: [queue, sett.x]
      rows: ["< 0.5 | a | b"]
  - table:
      hit_policy: priority
      inputs: [output.probability]
      outputs: [queue]
      rows: ["< 0.5 | a", "- | b | c"]
  - table:
      hit_policy: collect
      inputs: [output.probability]
      outputs: [queue]
      rows: ["< 0.5 | a"]
"""
    assert diagnostics(text) == [
        "rules.yaml:3:19: error: unknown hit policy 'frist' (did you mean first?); use one of first, unique, priority, any, collect, rule_order",
        "rules.yaml:9:20: error: unknown aggregation 'avg'; use one of count, sum, min, max",
        "rules.yaml:11:24: error: unknown output 'sett.x'; outputs are queue, review, reason, fallback or set.<field>",
        "rules.yaml:13:5: error: table 'table#3': hit_policy priority needs the output values in priority order, "
        "e.g. outputs: [{name: queue, values: [urgent, review, general]}]",
        "rules.yaml:17:28: error: row 2 of table 'table#3' has 3 cells; with 1 inputs and 1 outputs it needs 2",
        "rules.yaml:21:17: error: table 'table#4': with hit_policy collect every matching row gives a value, so outputs "
        "are lists and must be set.<field>; queue takes one value: use hit_policy first, unique, any or priority to choose it",
    ]


def test_priority_values_must_be_listed() -> None:
    text = """\
rules:
  - table:
      hit_policy: priority
      inputs: [output.probability]
      outputs: [{name: queue, values: [urgent, general]}]
      rows: |
        < 0.5 | urgnt
"""
    assert diagnostics(text) == ["rules.yaml:7:17: error: 'urgnt' is not one of the values of queue: urgent, general"]


def test_bad_yaml_and_unknown_keys() -> None:
    assert diagnostics("rules:\n  - when: [a\n") == [
        "rules.yaml:3:1: error: invalid YAML: expected ',' or ']', but got '<stream end>'"
    ]
    text = """\
verison: 1
rules:
  - name: a
    wen: output.probability < 0.5
    then: {queue: a, reveiw: true}
  - name: a
    then: {reason: x}
"""
    assert diagnostics(text) == [
        "rules.yaml:1:1: error: the rules file: unknown key 'verison' (did you mean version?); the keys are version, description, default, rules",
        "rules.yaml:4:5: error: rule 1: unknown key 'wen' (did you mean when?); the keys are name, description, when, then, stop",
        "rules.yaml:5:22: error: `then` of rule 'a': unknown key 'reveiw' (did you mean review?); the keys are queue, set, review, reason, fallback",
        "rules.yaml:6:11: error: the name 'a' is used twice; rule and table names must be unique",
        "rules.yaml:7:12: error: reason goes with review: true",
    ]
    assert diagnostics("") == [
        "rules.yaml:1:1: error: the rules file is empty; it needs a `rules:` list (see docs/rules.md)"
    ]
    assert diagnostics("- a\n") == [
        "rules.yaml:1:1: error: the rules file must be a mapping with keys version, description, default, rules"
    ]


def test_set_and_default_answer_are_checked() -> None:
    text = """\
default:
  queue: general
  answer: {intent: unknown, probability: high}
rules:
  - then: {set: {intnt: '"x"', probability: null}}
"""
    assert diagnostics(text) == [
        "rules.yaml:3:11: error: default answer: probability is 'high', but the output's probability is a number",
        "rules.yaml:3:11: error: default answer: the output field 'alternatives' is required; give it a value",
        "rules.yaml:5:18: error: set: unknown output field 'intnt' (did you mean intent?); the output has intent, probability, alternatives",
        "rules.yaml:5:45: error: set probability: null is a missing value, and setting one changes nothing",
    ]


def test_fallback_without_an_answer_is_a_warning() -> None:
    rules = load_rules("rules:\n  - when: output.probability < 0.1\n    then: {fallback: true}\n", **SCHEMAS)
    assert [str(w) for w in rules.warnings] == [
        "rules.yaml:2:5: warning: fallback: true, but `default:` has no `answer:`; the service's own default answer will be used"
    ]


def test_positions_inside_block_rows_and_quoted_text() -> None:
    text = """\
rules:
  - table:
      hit_policy: first
      inputs: [output.intent]
      outputs: [queue]
      rows: |
        card_arrival | urgent
        # a comment
           "lost_or_stolen_crd" | urgent
  - when: 'output.intent == "x\\ty" or output.intent == ''card_arivl'''
    then: {queue: a}
  - when: "output.intent == \\"x\\ty\\" or output.intnt == 1"
    then: {queue: a}
"""
    assert diagnostics(text) == [
        "rules.yaml:9:12: error: 'lost_or_stolen_crd' is not a label the model can output (did you mean lost_or_stolen_card?); "
        "output.intent holds one of the model's 77 labels",
        "rules.yaml:10:29: error: 'x\\ty' is not a label the model can output; output.intent holds one of the model's 77 labels",
        "rules.yaml:10:56: error: 'card_arivl' is not a label the model can output (did you mean card_arrival?); "
        "output.intent holds one of the model's 77 labels",
        "rules.yaml:12:29: error: 'x\\ty' is not a label the model can output; output.intent holds one of the model's 77 labels",
        "rules.yaml:12:41: error: unknown field output.intnt (did you mean output.intent?)",
    ]


def test_the_filename_and_every_problem_are_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - when: output.a ==\n    then: {queue: x}\n  - when: output.b <\n    then: {queue: y}\n")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(f"{path} has 2 errors; the rules were not loaded:\n")
    assert f"{path}:2:" in message and f"{path}:4:" in message
    first = info.value.diagnostics[0]
    assert (first.file, first.line, first.severity) == (str(path), 2, "error")


def test_refs_and_optional_fields_resolve() -> None:
    class Inner(BaseModel):
        score: float | None = None
        tags: list[str] = []

    class Out(BaseModel):
        best: Inner
        others: list[Inner]
        extra: dict[str, float]

    schema = TypeAdapter(Out).json_schema()
    assert "$defs" in schema
    text = """\
rules:
  - when: output.best.score > 0.5 and output.others[1].score < 0.2 and output.extra["x"] > 1 and "a" in output.best.tags
    then: {queue: ok}
"""
    rules = load_rules(text, output_schema=schema)
    output = {"best": {"score": 0.7, "tags": ["a"]}, "others": [{}, {"score": 0.1}], "extra": {"x": 2}}
    assert rules.decide({}, output, {}).queue == "ok"
    assert diagnostics(
        "rules:\n  - when: output.best.scor > 1\n    then: {queue: a}\n", output_schema=schema, labels=None
    ) == ["rules.yaml:2:11: error: unknown field output.best.scor (did you mean output.best.score?)"]


# -- the example in docs/rules.md ----------------------------------------------


def doc_blocks() -> list[str]:
    text = (ROOT / "docs" / "rules.md").read_text()
    return re.findall(r"^```yaml\n(.*?)^```", text, flags=re.S | re.M)


def test_the_banking77_example_loads_against_the_service_schemas_and_decides() -> None:
    example = doc_blocks()[0]
    assert example.startswith("# examples/banking77/rules.yaml")
    rules = load_rules(example, **SCHEMAS)
    assert isinstance(rules, RuleSet) and rules.warnings == []
    assert rules.version == "banking77-routing-1"

    def route(intent: str, probability: float) -> tuple[str | None, bool, list[str]]:
        output = SERVICE.Intent(intent=intent, probability=probability, alternatives=[]).model_dump()
        d = rules.decide({"text": "hello"}, output, {"request_id": "r1"})
        assert d.rules_version == "banking77-routing-1" and d.errors == ()
        return d.queue, d.review, d.fired

    assert route("card_arrival", 0.93) == ("urgent", False, ["urgent-cards"])
    assert route("lost_or_stolen_card", 0.8) == ("urgent", False, ["urgent-cards"])
    assert route("compromised_card", 0.3) == ("urgent", True, ["urgent-cards", "low-confidence"])
    assert route("age_limit", 0.31) == ("general", True, ["low-confidence"])
    assert route("age_limit", 0.9) == ("general", False, [])
    low = rules.decide({}, {"intent": "age_limit", "probability": 0.31, "alternatives": []}, {})
    assert low.review_reason == "low confidence"
    answer = rules.apply({"intent": "age_limit", "probability": 0.31, "alternatives": []}, low)
    assert answer == {"intent": "age_limit", "probability": 0.31, "alternatives": []}
    assert rules.default_answer == {"intent": "unknown", "probability": 0.0, "alternatives": []}


def test_the_table_version_of_the_example_decides_the_same() -> None:
    rules = load_rules(doc_blocks()[0], **SCHEMAS)
    table = load_rules(doc_blocks()[1], **SCHEMAS)
    for intent in ("card_arrival", "compromised_card", "age_limit", "lost_or_stolen_card", "card_linking"):
        for probability in (0.1, 0.49, 0.5, 0.9):
            output: dict[str, Any] = {"intent": intent, "probability": probability, "alternatives": []}
            a, b = rules.decide({}, output, {}), table.decide({}, output, {})
            # The table stops at the first match: an urgent card is not also reviewed.
            urgent = intent in ("card_arrival", "compromised_card", "lost_or_stolen_card")
            assert b.queue == a.queue
            assert b.review == (a.review and not urgent)


@pytest.mark.parametrize("index", range(len(doc_blocks())))
def test_every_yaml_example_in_the_docs_loads(index: int) -> None:
    block = doc_blocks()[index]
    if not re.match(r"(#.*\n)*(version|default|rules):", block):
        block = "rules:\n" + block
    load_rules(block, **SCHEMAS)
