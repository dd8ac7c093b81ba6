"""Suite files: the format, its defaults, and errors that point at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.expect.cases import Direction, Invariance
from shipway.expect.expectations import (
    FieldEquals,
    FieldMatches,
    ItemAbsent,
    ItemInTopK,
    LabelEquals,
    LabelInTopK,
    ProbabilityAtLeast,
    QueueEquals,
)
from shipway.expect.fields import Fields
from shipway.expect.parsing import specs
from shipway.validation import SuiteError, load_suite, load_suites, parse_expectations
from shipway.validation.suite import is_suite_file

EVERY_KIND = """\
name: kinds
input_field: text
fields: {label: intent, probability: probability, topk: alternatives, key: intent, queue: decision.queue}
cases:
  - name: all single-output expectations
    input: "where is my card"
    expect:
      label: card_arrival
      label_in_top_k: {label: card_delivery_estimate, k: 3}
      probability_at_least: 0.5
      item_in_top_k: {item: doc-1, k: 5, list: results, key: id}
      item_absent: {item: doc-9, list: results, key: id}
      queue: urgent
      field:
        - {path: decision.review, equals: false}
        - {path: intent, matches: "^card_"}
  - name: probability of one label
    input: {text: "where is my card", channel: app}
    expect:
      probability_at_least: {label: card_arrival, value: 0.2}
  - name: rewordings
    input: "where is my card"
    invariance:
      tolerance: 0.1
      variants: ["where's my card", "WHERE IS MY CARD"]
  - name: short invariance
    input: "where is my card"
    invariance: ["where's my card"]
  - name: more words raise it
    input: "where is my card"
    direction: {variants: ["where is my card, it has been weeks"], raises: probability, label: card_arrival, by: 0.05}
  - name: lower a field
    input: "x"
    direction: {variants: ["y"], lowers: risk.score}
    expect_failure: the model does not know yet
"""


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_expectation_kind_parses(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, EVERY_KIND))
    assert suite.name == "kinds"
    assert suite.fields == Fields("intent", "probability", "alternatives", "intent", "decision.queue")
    first = suite.cases[0]
    assert first.input == {"text": "where is my card"}
    assert first.expect == [
        LabelEquals("card_arrival"),
        LabelInTopK("card_delivery_estimate", 3),
        ProbabilityAtLeast(0.5),
        ItemInTopK("doc-1", 5, "results", "id"),
        ItemAbsent("doc-9", None, "results", "id"),
        QueueEquals("urgent"),
        FieldEquals("decision.review", False),
        FieldMatches("intent", None, "^card_"),
    ]
    assert first.line == 5 and first.file == str(tmp_path / "suite.yaml")
    assert suite.cases[1].input == {"text": "where is my card", "channel": "app"}
    assert suite.cases[1].expect == [ProbabilityAtLeast(0.2, "card_arrival")]
    assert suite.cases[2].behaviour == Invariance([{"text": "where's my card"}, {"text": "WHERE IS MY CARD"}], 0.1)
    assert suite.cases[3].behaviour == Invariance([{"text": "where's my card"}])
    assert suite.cases[4].behaviour == Direction(
        [{"text": "where is my card, it has been weeks"}],
        raises=True,
        score="probability",
        label="card_arrival",
        by=0.05,
    )
    last = suite.cases[5]
    assert last.behaviour == Direction([{"text": "y"}], raises=False, score="risk.score")
    assert last.expect_failure and last.reason == "the model does not know yet"
    assert [type(i) for i in last.inputs] == [dict, dict]


def test_specs_round_trip() -> None:
    suite_expect = {
        "label": "a",
        "label_in_top_k": {"label": "b", "k": 2},
        "probability_at_least": {"label": "a", "value": 0.3},
        "item_in_top_k": {"item": "d", "k": 3, "list": "results", "key": "id"},
        "item_absent": {"item": "e", "k": 4},
        "queue": "q",
        "field": [{"path": "x", "equals": 1}, {"path": "y", "matches": "z+"}],
    }
    expectations = parse_expectations(suite_expect)
    assert specs(expectations) == suite_expect
    assert parse_expectations(specs(expectations)) == expectations


def test_defaults_name_target_and_unnamed_cases(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "validation").mkdir(parents=True)
    (project / "service.py").write_text("def predict(x): return x\n")
    path = write(project / "validation", "cases:\n  - input: {text: hi}\n    expect: {label: hi}\n", "smoke.yaml")
    suite = load_suite(path)
    assert suite.name == "smoke"
    assert suite.target == project.resolve()
    assert suite.cases[0].name == "{'text': 'hi'}"
    assert suite.fields == Fields()


def test_target_key_is_relative_to_the_suite(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    path = write(tmp_path, "target: svc\ncases:\n  - {input: 1, expect: {label: 1}}\n")
    assert load_suite(path).target == (tmp_path / "svc").resolve()
    missing = write(tmp_path, "target: nowhere\ncases:\n  - {input: 1, expect: {label: 1}}\n", "b.yaml")
    with pytest.raises(SuiteError, match=r"b\.yaml:1: the suite's target .*nowhere does not exist"):
        load_suite(missing)


BAD = [
    ("cases:\n  - input: 1\n    expcet: {label: a}\n", 3, "unknown case key 'expcet'.*Did you mean 'expect'"),
    ("cases:\n  - input: 1\n    expect:\n      lable: a\n", 4, "unknown expectation 'lable'.*Did you mean 'label'"),
    (
        "cases:\n  - input: 1\n    expect: {label: a}\n    expect: {label: b}\n",
        4,
        "the key 'expect' appears twice.*line 3",
    ),
    (
        "cases:\n  - input: 1\n    expect:\n      label_in_top_k: {label: a, k: 0}\n",
        4,
        "k must be a whole number of at least 1, not 0",
    ),
    ("cases:\n  - input: 1\n    expect:\n      label_in_top_k: {label: a}\n", 4, "`label_in_top_k` needs k"),
    ("cases:\n  - input: 1\n    expect:\n      field: {path: a, matches: '('}\n", 4, "not a valid regular expression"),
    (
        "cases:\n  - input: 1\n    expect:\n      field: {path: a}\n",
        4,
        "needs one of `equals`, `matches` or a range",
    ),
    (
        "cases:\n  - input: 1\n    expect:\n      probability_at_least: 1.5\n",
        4,
        "a probability must be a number from 0 to 1",
    ),
    ("cases:\n  - name: x\n    expect: {label: a}\n", 2, "the case has no `input:`"),
    ("cases:\n  - input: 1\n", 2, "checks nothing; add `expect:`, `invariance:` or `direction:`"),
    (
        "cases:\n  - input: 1\n    invariance: [2]\n    direction: {variants: [2], raises: probability}\n",
        2,
        "`invariance` or `direction`, not both",
    ),
    ("cases:\n  - input: 1\n    direction: {variants: [2]}\n", 3, "exactly one of `raises:` and `lowers:`"),
    ("cases:\n  - input: 1\n    invariance: {variants: []}\n", 3, "`variants` must be a non-empty list"),
    (
        "cases:\n  - input: 1\n    invariance: {variants: [2], tolerence: 0.1}\n",
        3,
        "unknown invariance key 'tolerence'",
    ),
    (
        "cases:\n  - {input: 1, expect: {label: a}, name: x}\n  - {input: 2, expect: {label: a}, name: x}\n",
        3,
        "two cases are named 'x'",
    ),
    ("fields: {lable: intent}\ncases:\n  - {input: 1, expect: {label: a}}\n", 1, "unknown field name 'lable'"),
    ("name: x\n", 1, "the suite has no `cases:` list"),
    ("cases: []\n", 1, "`cases` must be a non-empty list"),
    ("cases:\n  - input: 1\n    expect: {label: [a, b]}\n", 3, "`label` takes one label"),
    ("casse:\n  - input: 1\n", 1, "unknown suite key 'casse'.*Did you mean 'cases'"),
    ("cases:\n  - input: [1\n", 3, "error: invalid YAML"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[b[2][:40] for b in BAD])
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SuiteError, match=message) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}:{line}:"), str(info.value)


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="a suite file is a mapping with a `cases:` list"):
        load_suite(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(SuiteError, match=r"suite file .*nope\.yaml does not exist; check the path"):
        load_suite(tmp_path / "nope.yaml")
    with pytest.raises(SuiteError, match=r"cannot read suite file .*: \[Errno 21\] Is a directory"):
        load_suite(tmp_path)


def test_load_suites_reads_folders_and_rejects_twin_names(tmp_path: Path) -> None:
    write(tmp_path, "name: a\ncases:\n  - {input: 1, expect: {label: 1}}\n", "one.yaml")
    write(tmp_path, "name: b\ncases:\n  - {input: 1, expect: {label: 1}}\n", "two.yml")
    write(tmp_path, "not a suite", "notes.txt")
    assert [s.name for s in load_suites([tmp_path])] == ["a", "b"]
    write(tmp_path, "name: a\ncases:\n  - {input: 1, expect: {label: 1}}\n", "three.yaml")
    with pytest.raises(SuiteError, match="two suites are named 'a'"):
        load_suites([tmp_path])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuiteError, match="holds no suite files"):
        load_suites([tmp_path / "empty"])


def test_is_suite_file(tmp_path: Path) -> None:
    (tmp_path / "validation").mkdir()
    cases = "cases:\n  - {input: 1, expect: {label: 1}}\n"
    assert is_suite_file(write(tmp_path, "x: 1\n", "suite_smoke.yaml"))
    assert is_suite_file(write(tmp_path, "x: 1\n", "smoke.suite.yml"))
    assert is_suite_file(write(tmp_path / "validation", cases, "intents.yaml"))
    assert not is_suite_file(write(tmp_path / "validation", "rules: []\n", "rules.yaml"))
    assert not is_suite_file(write(tmp_path, cases, "intents.yaml"))  # not in validation/
    assert not is_suite_file(write(tmp_path / "validation", cases, "intents.json"))
