"""Batch scoring's column path (rules over columns, outputs as columns) answers what serving answers.

Every scored row is checked against `Pipeline.run` on the same row, one at a time (what
`/predict` and `shipway predict` run): the output fields, the decision and the error must be
equal. The rule sets cover what the column evaluator decides, what it leaves to the row path
(a null field it reads, `set`, `fallback`) and rules it cannot read at all (a decision table);
each with the service's `predict_batch` alone and with its `predict_columns` beside it (the
answers as columns, core/answer_columns.py).
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shipway.errors import OutputError, ShipwayError
from shipway.project import load_pipeline
from shipway.rules.live import Active, LiveRules
from shipway.scoring import OutputColumns, score
from shipway.scoring.columns import decision_columns
from shipway.scoring.score import IDS
from tests.experiments.test_experiments_backtest_columns import KINDS, T0, load, rules_text, value

SCORER = Path(__file__).resolve().parents[1] / "services" / "scorer"

ROWS: list[dict[str, Any]] = [
    {"text": "lost card", "channel": "phone", "priority": 1},
    {"text": "hello there"},  # channel and priority take their defaults
    {"channel": "web"},  # no text: fails the input schema
    {"text": "boom"},  # predict_batch raises on it
    {"text": "stolen card now", "priority": "x"},  # priority not an integer
    {"text": "nan"},  # a NaN probability: the dump writes it as null
    {"text": "a note here", "priority": 2},  # `note` set: the rules read it
    {"text": "lost stolen card card card", "priority": 3},
    {"text": "card", "priority": 3},
    {"text": ""},
    *({"text": f"card number {i}" + " note" * (i % 5 == 0), "priority": i % 4, "channel": "phone"} for i in range(40)),
]

RULES = {
    # What the column evaluator decides for every row the model answers.
    "columns": """
version: columns-1
default: {queue: general, reason: not looked at}
rules:
  - name: phone-cards
    when: output.label == "card" and input.channel == "phone"
    then: {queue: urgent}
  - name: unsure
    when: output.probability < 0.5 or output.words > 3
    then: {review: true, reason: unsure}
  - name: quiet
    when: input.priority == 2
    then: {review: false}
  - name: done
    when: input.priority == 1
    then: {queue: done}
    stop: true
  - name: empty
    when: output.words == 0
    then: {queue: last}
""",
    # Rows left to the row path: a null the rules read, `set`, `fallback`.
    "row-path": """
version: row-path-1
default:
  queue: general
  answer: {label: unknown, probability: 0.0, hits: [], words: 0}
rules:
  - name: noted
    when: output.note == "n"
    then: {queue: notes}
  - name: long
    when: output.words > 3
    then: {set: {label: long, words: 99}}
  - name: give-up
    when: input.priority == 3 and output.words <= 2
    then: {fallback: true, review: true, reason: gave up}
""",
    # No column form: the whole batch goes the row path.
    "table": """
version: table-1
default: {queue: general}
rules:
  - table:
      name: risk
      hit_policy: first
      inputs: [output.probability]
      outputs: [queue]
      rows:
        - ["< 0.5", low]
        - ["-", high]
""",
}


# The scorer's answers as columns, in each form a column may take: a list, a numpy array, a
# pyarrow array (of the nested `hits`).
PREDICT_COLUMNS = """

def predict_columns(words, messages):
    import numpy as np
    import pyarrow as pa

    labels, probabilities, hits, counts, notes = [], [], [], [], []
    for m in messages:
        if m.text == "boom":
            raise ValueError("the model cannot read 'boom'")
        tokens = m.text.lower().split()
        found = [{"word": t, "at": i} for i, t in enumerate(tokens) if t in words]
        probability = min(1.0, len(found) / 2 + m.priority / 10)
        labels.append("card" if found else "other")
        probabilities.append(float("nan") if m.text == "nan" else probability)
        hits.append(found)
        counts.append(len(tokens))
        notes.append("n" if "note" in tokens else None)
    hits_type = pa.list_(pa.struct([("word", pa.string()), ("at", pa.int64())]))
    return {
        "label": labels,
        "probability": np.array(probabilities),
        "hits": pa.array(hits, hits_type),
        "words": np.array(counts, dtype=np.int32),
        "note": notes,
    }
"""


def project(tmp_path: Path, rules: str, columns: bool = False) -> Path:
    """The scorer test project with an optional output field (`note`), NaN for "nan", and `rules`;
    with `columns`, it answers batch scoring in columns too (`predict_columns`)."""
    folder = tmp_path / "scorer"
    shutil.copytree(SCORER, folder)
    service = folder / "service.py"
    text = service.read_text()
    text = text.replace("    words: int\n", "    words: int\n    note: str | None = None\n")
    text = text.replace(
        "        probability = min(1.0, len(hits) / 2 + m.priority / 10)\n",
        "        probability = min(1.0, len(hits) / 2 + m.priority / 10)\n"
        "        probability = float('nan') if m.text == 'nan' else probability\n",
    )
    text = text.replace(
        "words=len(tokens)))",
        "words=len(tokens), note='n' if 'note' in tokens else None))",
    )
    service.write_text(text + (PREDICT_COLUMNS if columns else ""))
    (folder / "rules.yaml").write_text(rules)
    return folder


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    else:
        names = ("text", "channel", "priority")
        pq.write_table(pa.table({n: [None if r.get(n) is None else str(r[n]) for r in rows] for n in names}), path)
    return path


def served(target: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row through `Pipeline.run` alone, as the scored Parquet holds its answer."""
    pipeline = load_pipeline(target)
    names = OutputColumns.from_json_schema(pipeline.output_schema.json_schema()).names
    out = []
    for row in rows:
        try:
            body = pipeline.jsonable(pipeline.run(row))
        except ShipwayError as err:
            out.append({**dict.fromkeys(names), "decision": None, "error": f"{type(err).__name__}: {err}"})
            continue
        decision = body.pop("decision", None)
        if decision is not None:
            decision.pop("rules_version")
            decision["set"] = orjson.dumps(decision["set"]).decode() if decision["set"] else None
        out.append({**{n: body.get(n) for n in names}, "decision": decision, "error": None})
    return out


def scored(path: Path) -> list[dict[str, Any]]:
    rows = pq.read_table(path).to_pylist()
    return [{k: v for k, v in r.items() if k != "row" and k not in IDS} for r in rows]


def same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    def comparable(row: dict[str, Any]) -> dict[str, Any]:  # NaN is not equal to itself
        return {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}

    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert comparable(g) == comparable(w), f"row {i}: {ROWS[i] if len(got) == len(ROWS) else ''}"


@pytest.mark.parametrize("columns", [False, True], ids=["predict_batch", "predict_columns"])
@pytest.mark.parametrize("rules", sorted(RULES))
@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_scoring_answers_what_serving_answers_row_by_row(
    tmp_path: Path, rules: str, suffix: str, columns: bool
) -> None:
    target = project(tmp_path, RULES[rules], columns)
    pipeline = load_pipeline(target)
    # predict_columns answers a batch without 'boom' (on which it raises: the batch then goes the
    # row path, which answers the others); batches of one put every other row through it.
    parsed = [
        v for v in pipeline.parse_many([r for r in ROWS if r.get("text") != "boom"]) if not isinstance(v, ShipwayError)
    ]
    answered = pipeline.run_columns(parsed)
    assert (answered.answers is not None) == (columns and rules != "table")  # a table: the rules' row form
    assert not any(isinstance(v, ShipwayError) for v in answered.values)
    want = served(target, [{k: str(v) for k, v in r.items()} if suffix == ".parquet" else r for r in ROWS])
    data = write(tmp_path / f"in{suffix}", ROWS)
    for batch_size in (1, 7, 1000) if columns else (7, 1000):
        summary = score(target, data, tmp_path / "out.parquet", batch_size=batch_size)
        same(scored(tmp_path / "out.parquet"), want)
        assert summary.errors == sum(w["error"] is not None for w in want) == 3
    decisions = [w["decision"] for w in want if w["decision"]]
    if rules == "columns":  # every kind of outcome the column form gives is there to compare
        assert {d["queue"] for d in decisions} == {"general", "urgent", "done", "last"}
        assert {d["review_reason"] for d in decisions} == {"unsure", None, "not looked at"}
        assert any(d["fired"] == ["phone-cards", "unsure", "quiet"] for d in decisions)
    if rules == "row-path":
        assert {d["queue"] for d in decisions} == {"general", "notes"}
        assert any(d["fallback"] for d in decisions) and any(d["set"] for d in decisions)


def test_plain_types_through_the_column_of_texts(tmp_path: Path) -> None:
    project = tmp_path / "lengths"
    project.mkdir()
    (project / "service.py").write_text(
        "from pydantic import BaseModel\n\n\n"
        "class Length(BaseModel):\n    chars: int\n    half: float\n    words: list[str]\n\n\n"
        "def predict(text: str) -> Length:\n"
        "    if text == 'boom':\n        raise ValueError('boom')\n"
        "    return Length(chars=len(text), half=len(text) / 2, words=text.split())\n"
    )
    texts = ["abcd", "a b", "boom", "", "x y z"]
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    score(project, tmp_path / "in.parquet", tmp_path / "out.parquet", batch_size=2)
    same(scored(tmp_path / "out.parquet"), served(project, texts))
    # A null cell is a missing value: the row path's error for that row, the others answered.
    pq.write_table(pa.table({"text": ["ab", None]}), tmp_path / "null.parquet")
    score(project, tmp_path / "null.parquet", tmp_path / "out.parquet")
    rows = scored(tmp_path / "out.parquet")
    assert rows[0]["chars"] == 2 and rows[1]["chars"] is None and "exactly one column" in rows[1]["error"]


def test_output_columns_from_the_objects_equal_the_columns_of_the_dump() -> None:
    from enum import StrEnum

    from pydantic import BaseModel, TypeAdapter

    class Colour(StrEnum):
        red = "red"

    class Part(BaseModel):
        name: str
        weight: float | None = None

    class Out(BaseModel):
        label: str
        score: float
        parts: list[Part]
        best: Part | None = None

    class Painted(BaseModel):
        colour: Colour

    adapter = TypeAdapter(Out)
    columns = OutputColumns.from_json_schema(adapter.json_schema())
    outputs: list[Any] = [
        Out(label="a", score=1, parts=[Part(name="p", weight=2.5), Part(name="q")], best=Part(name="b")),
        None,
        Out(label="b", score=0.5, parts=[]),
        Out(label="c", score=0.25, parts=[Part(name="r", weight=1)]),
    ]

    def dumped(values: list[Any]) -> list[pa.Array]:
        return columns.arrays([None if v is None else adapter.dump_python(v, mode="json") for v in values])

    direct = columns.arrays_of(outputs)
    assert direct is not None and direct == dumped(outputs)
    # Values the dump writes otherwise: the caller is told to take the dump.
    assert columns.arrays_of([*outputs, Out(label="d", score=float("nan"), parts=[])]) is None
    painted = OutputColumns.from_json_schema(TypeAdapter(Painted).json_schema())
    assert painted.types == (pa.string(),) and painted.arrays_of([Painted(colour=Colour.red)]) is None


@st.composite
def batch(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Requests and outputs with the backtest test's fields: mostly well typed, some null or
    absent, and in a few batches values of another type."""
    wrong = draw(st.integers(0, 4)) == 0
    requests: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 30))):
        docs: dict[str, dict[str, Any]] = {"input": {}, "output": {}}
        for name, kind in KINDS.items():
            choice = (
                value(kind)
                if wrong
                else st.one_of(*[value(kind).filter(lambda v, k=kind: type(v) is k)] * 6, st.none(), st.just("absent"))
            )
            v = draw(choice)
            root, field = name.split(".")
            if v != "absent":
                docs[root][field] = v
        requests.append(docs["input"])
        outputs.append(docs["output"])
    return requests, outputs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.data(), batch())
def test_the_rules_stage_over_columns_decides_what_it_decides_row_by_row(data: Any, rows: Any) -> None:
    requests, outputs = rows
    live = LiveRules()
    live.swap(Active(live=load(data.draw(rules_text("live")))))
    live.clock = lambda: T0 + 20
    want = live.decide_many(outputs, requests)
    got = live.decide_columns(outputs, requests)
    event("row path" if got is None else "over columns, some rows by the row path" if got.rows else "over columns")
    if got is None:  # a batch of mixed types: the stage runs `decide_many`
        return
    assert got.answers == [w.output for w in want]
    for row, (decision, served) in enumerate(zip(decision_columns(got, len(outputs)).to_pylist(), want, strict=True)):
        expected = served.decided.to_dict()
        del expected["rules_version"]
        expected["set"] = orjson.dumps(expected["set"]).decode() if expected["set"] else None
        assert decision == expected, (row, requests[row], outputs[row])


BOUNDED = """
from pydantic import BaseModel, Field{imports}


class Tag(BaseModel):
    name: str = Field(min_length=1)


class Out(BaseModel):
    label: str
    p: float = Field(ge=0, le=1)
    tags: list[Tag] = Field(max_length=2)
    size: int | None = None
{validator}

def answer(text):
    return {{
        "label": None if text == "null" else text,
        "p": len(text) / 8,
        "tags": [{{"name": w}} for w in text.split(",")],
        "size": None if "?" in text else len(text),
    }}


def predict_batch(texts: list[str]) -> list[Out]:
    return [answer(t) for t in texts]  # dicts: the output schema makes (or refuses) each answer


def predict_columns(texts):
    rows = [answer(t) for t in texts]
    return {{name: [r[name] for r in rows] for name in ("label", "p", "tags", "size")}}
"""

VALIDATOR = """
    @model_validator(mode="after")
    def not_ok(self):
        if self.label == "nope":
            raise ValueError("label must not be 'nope'")
        return self
"""


@pytest.mark.parametrize("checked", [True, False], ids=["over-columns", "row-by-row"])
def test_column_answers_that_break_the_output_type_fail_as_the_row_path_fails_them(
    tmp_path: Path, checked: bool
) -> None:
    """Each bad value fails its row alone with the row path's message, unless the rules' `set`
    gives that row a good answer; a type whose checks the columns cannot run (a model validator)
    is checked answer by answer, with the same outcome."""
    folder = tmp_path / "bounded"
    folder.mkdir()
    (folder / "service.py").write_text(
        BOUNDED.format(imports=", model_validator" if not checked else "", validator="" if checked else VALIDATOR)
    )
    (folder / "shipway.toml").write_text('[rules]\nfile = "rules.yaml"\n')
    (folder / "rules.yaml").write_text(
        "version: cap-1\ndefault: {queue: general}\nrules:\n"
        "  - name: cap\n    when: output.p > 1.5\n    then: {set: {p: 1.0}}\n"
        "  - name: long\n    when: output.p > 0.5\n    then: {queue: long}\n"
    )
    texts = ["ab", "abcdefghij", "abcdefghijklmnop", "a,,b", "x,y,z", "null", "q?", "ok", "nope", "abcdefghijklmno,"]
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    pipeline = load_pipeline(folder)
    assert (pipeline.run_columns(texts).answers is not None) == checked  # else the rows' values go on as answers
    want = served(folder, texts)
    assert [w["error"] is not None for w in want] == [
        False,
        True,
        False,
        True,
        True,
        True,
        False,
        False,
        not checked,
        True,
    ]
    assert "field p: Input should be less than or equal to 1" in want[1]["error"]
    for batch_size in (1, 4, 100):
        score(folder, tmp_path / "in.parquet", tmp_path / "out.parquet", batch_size=batch_size)
        same(scored(tmp_path / "out.parquet"), want)


def test_malformed_column_answers_stop_scoring_with_the_problem_and_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "short"
    folder.mkdir()
    (folder / "service.py").write_text(
        BOUNDED.format(imports="", validator="").replace(
            "return {name: [r[name] for r in rows]", "return {name: [r[name] for r in rows][1:]"
        )
    )
    pq.write_table(pa.table({"text": ["ab", "cd"]}), tmp_path / "in.parquet")
    with pytest.raises(OutputError, match="returned 1 values in the column 'label' of Out for a batch of 2 inputs"):
        score(folder, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_predict_columns_that_raises_answers_row_by_row_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "raising"
    folder.mkdir()
    (folder / "service.py").write_text(
        BOUNDED.format(imports="", validator="").replace(
            "    rows = [answer(t) for t in texts]\n    return {",
            '    raise RuntimeError("columns broke")\n    return {',
        )
    )
    texts = ["ab", "q?", "ok"]
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    with caplog.at_level(logging.WARNING, logger="shipway.core"):
        score(folder, tmp_path / "in.parquet", tmp_path / "out.parquet", batch_size=1)
    same(scored(tmp_path / "out.parquet"), served(folder, texts))
    said = [r.getMessage() for r in caplog.records if "predict_columns raised" in r.getMessage()]
    assert len(said) == 1 and "RuntimeError: columns broke" in said[0] and "shipway check" in said[0]
