"""The backtest over columns (experiments/backtest_columns.py, rules/columns.py) reports exactly
what the row path through the rules stage reports: generated rule sets of every kind the
column evaluator takes, over generated rows with missing, null and wrongly typed values, with
candidates in shadow and canary; rule sets it does not take go down the row path whole."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipway.experiments.backtest import replay
from shipway.experiments.backtest_columns import replay_table
from shipway.rules import load_rules
from shipway.rules.columns import ColumnRules, why_not
from shipway.rules.live import META_SCHEMA, Active

pa = pytest.importorskip("pyarrow")

INPUT = {
    "type": "object",
    "properties": {"amount": {"type": "integer"}, "text": {"type": "string"}, "vip": {"type": "boolean"}},
}
OUTPUT = {"type": "object", "properties": {"intent": {"type": "string"}, "probability": {"type": "number"}}}
KINDS = {"input.amount": int, "input.text": str, "input.vip": bool, "output.intent": str, "output.probability": float}
T0 = 1_700_000_000.0

CONDITIONS = [
    "output.probability < {p}",
    "output.probability >= {p}",
    "{p} < output.probability <= 0.9",
    "output.intent in ['card', 'fee', 'Ünï']",
    "output.intent not in ['card', 'refund']",
    "output.intent == 'fee'",
    "output.intent != 'card'",
    "output.intent > 'f'",
    "input.amount * 2 + 1 > {n}",
    "input.amount / {d} > 1.5",
    "-input.amount < {n}",
    "abs(input.amount - 3) <= 2",
    "input.amount in [1, 2.0, 7]",
    "length(input.text) > 3",
    "len(input.text) == 0",
    "lower(input.text) == 'abc'",
    "upper(input.text) != 'ABC'",
    "startswith(input.text, 'a')",
    "endswith(input.text, 'c')",
    "contains(input.text, 'b')",
    "input.vip",
    "not input.vip",
    "input.vip == true",
    "input.vip in [false]",
    "missing(input.amount)",
    "present(output.intent)",
    "meta.time > {t}",
    "meta.canary",
    "true",
]
SET_VALUES = ["1", "1.0", "0.5", "0"]


@st.composite
def condition(draw: Any, depth: int = 0) -> str:
    if depth < 2 and draw(st.booleans()):
        op = draw(st.sampled_from(["and", "or", "not"]))
        if op == "not":
            return f"not ({draw(condition(depth + 1))})"
        return f"({draw(condition(depth + 1))}) {op} ({draw(condition(depth + 1))})"
    text = draw(st.sampled_from(CONDITIONS))
    return text.format(
        p=draw(st.sampled_from([0.1, 0.5, 0.75])),
        n=draw(st.integers(-3, 12)),
        d=draw(st.sampled_from([2, 4])),
        t=T0 + draw(st.integers(0, 40)),
    )


@st.composite
def rules_text(draw: Any, version: str) -> str:
    lines = [
        f"version: {version}",
        f"default: {draw(st.sampled_from(['{queue: general}', '{review: false}']))}",
        "rules:",
    ]
    for i in range(draw(st.integers(1, 4))):
        actions = []
        if draw(st.booleans()):
            actions.append(f"queue: {draw(st.sampled_from(['urgent', 'human', 'general']))}")
        if draw(st.booleans()):
            actions.append(draw(st.sampled_from(["review: true, reason: why", "review: false"])))
        if draw(st.booleans()):
            actions.append(f"fallback: {draw(st.sampled_from(['true', 'false']))}")
        if draw(st.booleans()):
            actions.append(f"set: {{probability: {draw(st.sampled_from(SET_VALUES))}}}")
        if not actions:
            actions.append("queue: urgent")
        lines.append(f"  - name: r{i}")
        lines.append(f"    when: {orjson.dumps(draw(condition())).decode()}")
        lines.append(f"    then: {{{', '.join(actions)}}}")
        if draw(st.booleans()):
            lines.append("    stop: true")
    return "\n".join(lines) + "\n"


def value(kind: type) -> st.SearchStrategy[Any]:
    good = {
        int: st.integers(-5, 12) | st.just(2**60),
        str: st.sampled_from(["abc", "ABC", "card", "fee", "Ünï", "", "b", "straße"]),
        bool: st.booleans(),
        float: st.sampled_from([0.05, 0.5, 0.75, 0.95, 1]),
    }[kind]
    return st.one_of(good, good, good, st.none(), st.just("absent"), st.sampled_from([3, "x", True, 0.25]))


@st.composite
def logged(draw: Any) -> Any:
    rows = []
    for i in range(draw(st.integers(1, 40))):
        values = {name: draw(value(kind)) for name, kind in KINDS.items()}
        docs: dict[str, dict[str, Any]] = {"input": {}, "output": {}}
        for name, v in values.items():
            root, field = name.split(".")
            if v != "absent":
                docs[root][field] = v
        mode = draw(st.sampled_from([None, "on", "on", "on", "shadow"]))
        broken = draw(st.integers(0, 19)) == 0
        rows.append(
            {
                "request_id": f"r{i:03d}",
                "ts": T0 + draw(st.integers(0, 40)),
                "inputs": '{"amount": ' if broken else orjson.dumps(docs["input"]).decode(),
                "outputs": orjson.dumps(docs["output"]).decode(),
                "decision": '{"answer":"default"}' if mode is None and draw(st.booleans()) else None,
                "mode": mode,
                "documents_ok": not broken,
                **{name: None if broken else typed(docs, name) for name in KINDS},
            }
        )
    return rows


def typed(docs: dict[str, dict[str, Any]], name: str) -> Any:
    """The export's typed column: the value when its JSON type is the schema's, else null."""
    root, field = name.split(".")
    v = docs[root].get(field)
    kind = KINDS[name]
    if kind is float:
        return float(v) if type(v) in (int, float) else None
    return v if type(v) is kind else None


def table_of(rows: list[dict[str, Any]]) -> Any:
    types = {"input.amount": pa.int64(), "input.text": pa.string(), "input.vip": pa.bool_()}
    types |= {"output.intent": pa.string(), "output.probability": pa.float64()}
    base = [("request_id", pa.string()), ("ts", pa.float64()), ("inputs", pa.string()), ("outputs", pa.string())]
    base += [("decision", pa.string()), ("mode", pa.string()), ("documents_ok", pa.bool_())]
    schema = pa.schema([*base, *types.items()])
    return pa.Table.from_pylist(rows, schema=schema)


def load(text: str) -> Any:
    return load_rules(text, input_schema=INPUT, output_schema=OUTPUT, meta_schema=META_SCHEMA)


def normal(report: Any) -> dict[str, Any]:
    """The report as JSON, its lists of counts in one order (ties list in order of first appearance)."""
    out = report.to_dict()
    out["queue_changes"] = sorted(out["queue_changes"], key=repr)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    logged(),
    st.sampled_from(["none", "live", "shadow", "canary", "canary-keyed"]),
)
def test_columns_and_rows_report_the_same(data: Any, rows: list[dict[str, Any]], how: str) -> None:
    proposed = load(data.draw(rules_text("proposed")))
    assert ColumnRules.of(proposed) is not None, why_not(proposed)
    live = load(data.draw(rules_text("live")))
    if how == "none":
        current = Active()
    elif how == "live":
        current = Active(live=live)
    else:
        candidate = load(data.draw(rules_text("cand")))
        if how == "shadow":
            current = Active(live=live, candidate=candidate, candidate_mode="shadow")
        elif how == "canary":
            current = Active(live=live, candidate=candidate, candidate_mode="canary", canary=0.5)
        else:  # a canary without live rules, keyed by a field
            current = Active(candidate=candidate, candidate_mode="canary", canary=0.3, canary_key="input.text")
    table = table_of(rows)
    by_rows = replay(
        [tuple(r[c] for c in ("request_id", "ts", "inputs", "outputs", "decision", "mode")) for r in rows],
        current,
        Active(live=proposed),
        examples=2,
    )
    by_columns = replay_table(table, current, Active(live=proposed), examples=2)
    assert normal(by_columns) == normal(by_rows)
    assert by_columns.queues == by_rows.queues


TABLE_RULES = """
version: t1
default: {queue: general}
rules:
  - table:
      name: routing
      hit_policy: first
      inputs: [output.intent]
      outputs: [queue]
      rows:
        - [card, urgent]
        - ['-', general]
"""


def test_rule_sets_without_a_column_form_take_the_row_path_whole() -> None:
    assert "decision table" in (why_not(load(TABLE_RULES)) or "")
    expression_set = load(
        "version: s\ndefault: {queue: a}\nrules:\n  - name: x\n    when: 'true'\n"
        "    then: {set: {probability: output.probability * 2}}\n"
    )
    assert "sets probability to an expression" in (why_not(expression_set) or "")
    rows = [
        {
            "request_id": f"r{i}",
            "ts": T0 + i,
            "inputs": "{}",
            "outputs": orjson.dumps({"intent": "card" if i % 2 else "fee"}).decode(),
            "decision": None,
            "mode": "on",
            "documents_ok": True,
            "output.intent": "card" if i % 2 else "fee",
        }
        for i in range(10)
    ]
    for rules in (load(TABLE_RULES), expression_set):
        table = pa.Table.from_pylist(rows)
        by_rows = replay(
            [tuple(r[c] for c in ("request_id", "ts", "inputs", "outputs", "decision", "mode")) for r in rows],
            None,
            rules,
        )
        assert replay_table(table, Active(), Active(live=rules)).to_dict() == by_rows.to_dict()
