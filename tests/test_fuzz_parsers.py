"""hypothesis over what shipway reads from outside: request bodies, rule expressions and the
YAML files (rules, validation suites, alerts). Whatever arrives, the answer is the typed error
that names the problem, never another exception; and the service's error body is JSON."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from shipway.core.pipeline import Pipeline
from shipway.core.schema import Schema
from shipway.errors import AlertError, InputError, PayloadError, RulesError, SuiteError
from shipway.monitoring.alerts.alert_file import parse_alerts
from shipway.rules import load_rules
from shipway.serving.bodies import parse_items, parse_one
from shipway.serving.responses import error_for
from shipway.validation.suite import parse_suite, read_yaml

# The same cases on every run (SHIPWAY_FUZZ_RANDOM=1 draws new ones), as in test_fuzz_http.py.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=os.environ.get("SHIPWAY_FUZZ_RANDOM") != "1",
)


class Message(BaseModel):
    text: str = Field(min_length=1, max_length=50, pattern=r"\S")
    n: int = 0
    score: float = 0.0


class Intent(BaseModel):
    intent: str
    probability: float


PIPELINE = Pipeline([], Schema(Message, "input"), Schema(Intent, "output"))
SCHEMAS = {
    "input_schema": Schema(Message, "input").json_schema(),
    "output_schema": Schema(Intent, "output").json_schema(),
}

# JSON values, with integers beyond 64 bits and every kind of text.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["text", "n", "score", "items", "x"]) | st.text(max_size=5), inner, max_size=4
        )
    ),
    max_leaves=12,
)


def body_of(value: Any) -> bytes:
    return json.dumps(value).encode()


def assert_one_shape(err: Exception) -> None:
    status, body, _ = error_for(err, "rid")
    assert status in (400, 413, 422), (status, err)
    error = json.loads(body)["error"]
    assert error["request_id"] == "rid" and error["type"] in ("payload_error", "input_error")


@FUZZ
@given(st.one_of(st.binary(max_size=200), JSON.map(body_of), st.builds(lambda v: body_of({"text": v}), JSON)))
def test_a_predict_body_is_an_input_or_a_4xx_in_the_one_shape(body: bytes) -> None:
    try:
        item = parse_one(PIPELINE, body)
    except (PayloadError, InputError) as err:
        assert_one_shape(err)
    else:
        assert isinstance(item, Message) and re.search(r"\S", item.text)


@FUZZ
@given(st.one_of(st.binary(max_size=200), JSON.map(body_of), st.builds(lambda v: body_of({"items": v}), JSON)))
def test_a_batch_body_is_inputs_or_a_4xx_in_the_one_shape(body: bytes) -> None:
    try:
        items = parse_items(PIPELINE, body, max_items=10)
    except (PayloadError, InputError) as err:
        assert_one_shape(err)
    else:
        assert all(isinstance(item, Message) for item in items)


# Expressions: the grammar's pieces put together at random, and any text at all.
ATOMS = st.sampled_from(
    ["output.probability", "output.intent", "input.text", "input.n", "input.score", "1", "0.5", "1e400", '"x"',
     "True", "None", "[1, 2]", "len(input.text)", "x", "output", "()", "'", "\\", "input.text[0]", "-", "9" * 30]
)  # fmt: skip
OPERATORS = st.sampled_from(
    [
        " < ",
        " == ",
        " and ",
        " or ",
        " in ",
        " + ",
        " * ",
        " / ",
        " % ",
        " ** ",
        " if ",
        " else ",
        " not ",
        "(",
        ")",
        ", ",
        ".",
    ]
)
EXPRESSIONS = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(ATOMS, OPERATORS), min_size=1, max_size=9).map("".join),
)


@FUZZ
@given(EXPRESSIONS)
def test_a_rule_expression_compiles_or_is_refused_with_a_rules_error(expression: str) -> None:
    source = yaml.safe_dump(
        {"version": "fuzz", "rules": [{"name": "r", "when": expression, "then": {"queue": "q"}}]}, allow_unicode=True
    )
    try:
        rules = load_rules(source, filename="rules.yaml", **SCHEMAS)
    except RulesError as err:
        assert str(err)
    else:
        assert rules.version == "fuzz"


YAML_TEXT = st.one_of(
    st.text(max_size=200),
    JSON.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.lists(st.sampled_from(["a:", " - b", "  c: [", "{", "}", "&x", "*x", "!!python/object:os.system", "'", "\t", "---", "? k", "x: 1", "\n"]), max_size=12).map("\n".join),
)  # fmt: skip


@FUZZ
@given(YAML_TEXT)
def test_a_rules_file_loads_or_is_refused_with_a_rules_error(text: str) -> None:
    try:
        load_rules(text + "\n", filename="rules.yaml", **SCHEMAS)
    except RulesError as err:
        assert str(err)


@FUZZ
@given(YAML_TEXT)
def test_a_suite_file_loads_or_is_refused_with_a_suite_error(text: str) -> None:
    try:
        parse_suite(read_yaml(text, "suite.yaml"), name="fuzz")
    except SuiteError as err:
        assert str(err)


@FUZZ
@given(YAML_TEXT)
def test_an_alerts_file_loads_or_is_refused_with_an_alert_error(text: str) -> None:
    try:
        parse_alerts(text, "alerts.yaml", environ={})
    except AlertError as err:
        assert str(err)
