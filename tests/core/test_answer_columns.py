"""A service's column answers (`predict_columns`) checked against the output schema.

Malformed columns (not a mapping, a field missing or unknown, the wrong length, a value of the
wrong type) are the service's mistake: an OutputError that names the column and the fix. A value
that breaks a constraint fails its row alone; the pipeline then gives it the row path's message
(tests/scoring/test_scoring_columns.py compares every row with `Pipeline.run`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pydantic import BaseModel, Field, model_validator

from shipway.core.answer_columns import ColumnCheck
from shipway.core.schema import Schema
from shipway.errors import OutputError


class Tag(BaseModel):
    name: str = Field(min_length=1)
    weight: float = 1.0


class Out(BaseModel):
    label: str
    p: float = Field(ge=0, le=1)
    tags: list[Tag] = Field(max_length=2)
    size: int | None = None


class Checked(BaseModel):
    label: str

    @model_validator(mode="after")
    def not_no(self) -> Checked:
        if self.label == "no":
            raise ValueError("label must not be 'no'")
        return self


def good() -> dict[str, Any]:
    return {
        "label": ["a", "b", "c"],
        "p": np.array([0.1, 0.5, 1.0]),
        "tags": {"name": np.array([["x", "y"], ["z", "w"], ["u", "v"]]), "weight": np.ones((3, 2))},
        "size": [1, None, 3],
    }


def test_good_columns_in_every_form_give_the_answers_as_rows() -> None:
    check = ColumnCheck(Schema(Out, "output"))
    answers = check.check(good(), 3)
    assert answers.checked and answers.bad == frozenset()
    assert [a.model_dump() for a in answers.rows([0, 2])] == [
        {"label": "a", "p": 0.1, "tags": [{"name": "x", "weight": 1.0}, {"name": "y", "weight": 1.0}], "size": 1},
        {"label": "c", "p": 1.0, "tags": [{"name": "u", "weight": 1.0}, {"name": "v", "weight": 1.0}], "size": 3},
    ]
    # lists of objects of any lengths as a pyarrow array or a list; ints where floats are due
    tags = [[{"name": "x", "weight": 2}], [], [{"name": "y", "weight": 0.5}, {"name": "z", "weight": 1}]]
    columns = {**good(), "tags": tags, "p": pa.array([0, 1, 0], pa.int8())}
    answers = check.check(columns, 3)
    assert answers.bad == frozenset()
    assert answers.dicts([1, 2]) == [
        {"label": "b", "p": 1.0, "tags": [], "size": None},
        {"label": "c", "p": 0.0, "tags": [{"name": "y", "weight": 0.5}, {"name": "z", "weight": 1.0}], "size": 3},
    ]
    assert answers.column("label").to_pylist() == ["a", "b", "c"] and answers.column("nothing") is None


def test_values_that_break_a_constraint_fail_their_rows_only() -> None:
    check = ColumnCheck(Schema(Out, "output"))
    tags = [[{"name": "x", "weight": 1}], [{"name": "", "weight": 1}], [{"name": "a", "weight": 1}] * 3, [], []]
    columns = {"label": ["a", "b", "c", None, "e"], "p": [0.5, 0.5, 0.5, 0.5, 1.5], "tags": tags, "size": [1] * 5}
    answers = check.check(columns, 5)
    assert answers.checked
    assert answers.bad == {1, 2, 3, 4}  # an empty name, three tags, a null label, p above 1
    # A null is a value, not a missing one: the field's default does not fill it (as for a dict).
    columns["tags"] = [[{"name": "x", "weight": None}], *tags[1:]]
    assert check.check(columns, 5).bad == {0, 1, 2, 3, 4}
    with pytest.raises(OutputError, match="field p: Input should be less than or equal to 1"):
        Schema(Out, "output").validate(answers.dicts([4])[0])


def test_a_type_the_columns_cannot_check_is_checked_row_by_row() -> None:
    answers = ColumnCheck(Schema(Checked, "output")).check({"label": ["yes", "no"]}, 2)
    assert not answers.checked and answers.bad == frozenset()
    assert answers.dicts([0, 1]) == [{"label": "yes"}, {"label": "no"}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: list(c.values()), "returned list; it must return a mapping of each field of Out to its column"),
        (
            lambda c: {k: v for k, v in c.items() if k != "p"},
            "no column for the field\\(s\\) 'p' of Out; return one column for each field of Out: label, p, tags, size",
        ),
        (lambda c: {**c, "bogus": [1, 2, 3]}, "the column\\(s\\) 'bogus', which Out has no field for"),
        (
            lambda c: {**c, "label": ["a", "b"]},
            "returned 2 values in the column 'label' of Out for a batch of 3 inputs",
        ),
        (lambda c: {**c, "p": ["x", "y", "z"]}, "the column 'p' of Out, which does not convert to the field's type"),
        (
            lambda c: {**c, "p": np.array(["x", "y", "z"])},
            "holds string and does not convert to the field's type \\(double\\)",
        ),
        (lambda c: {**c, "size": np.ones((3, 2))}, "the column 'size' of Out as an array of shape \\(3, 2\\)"),
        (lambda c: {**c, "label": "abc"}, "the column 'label' of Out as str; a column is a list"),
        (
            lambda c: {**c, "label": {"x": [1, 2, 3]}},
            "the column 'label' of Out as a mapping, but the field holds string",
        ),
        (
            lambda c: {**c, "tags": {"name": np.array([["x"], ["y"], ["z"]]), "weight": np.ones((3, 2))}},
            "other lengths \\(or nulls\\) in 'tags.weight' than in 'tags.name'",
        ),
        (
            lambda c: {**c, "tags": {"name": np.array([["x"], ["y"], ["z"]])}},
            "no column for the field\\(s\\) 'weight' of 'tags' of Out",
        ),
    ],
)
def test_malformed_columns_name_the_problem_and_the_fix(change: Any, message: str) -> None:
    with pytest.raises(OutputError, match=message):
        ColumnCheck(Schema(Out, "output")).check(change(good()), 3)


def test_an_output_without_one_column_type_per_field_is_refused_with_the_fix() -> None:
    class Loose(BaseModel):
        extra: dict[str, Any]

    with pytest.raises(OutputError, match=r"extra has no single column type.*or remove predict_columns"):
        ColumnCheck(Schema(Loose, "output")).check({"extra": [{}]}, 1)


def test_bounds_compared_over_the_column_fail_what_pydantic_fails() -> None:
    """Bounds (ge, gt, le, lt, min_length, max_length) are compared over the column; NaN, the
    infinities and the edges fail or pass as pydantic's validator decides for the same values."""
    from typing import Annotated

    from pydantic import TypeAdapter

    class Bounded(BaseModel):
        closed: Annotated[float, Field(ge=0, le=1)]
        open: Annotated[float, Field(gt=0, lt=1)]
        count: Annotated[int, Field(ge=-1, lt=3)]
        text: Annotated[str, Field(min_length=1, max_length=2)]

    nan, inf = float("nan"), float("inf")
    floats = [0.0, 1.0, -0.0, 0.5, nan, inf, -inf, 1e-300, 1.0000001]
    n = len(floats)
    counts = [-2, -1, 0, 2, 3, 10**12, 1, 1, 1]
    texts = ["", "é", "ab", "abc", "🙂🙂", "🙂🙂🙂", "a", "a", "a"]
    adapter = TypeAdapter(Bounded)
    check = ColumnCheck(Schema(Bounded, "output"))
    good = {"closed": 0.5, "open": 0.5, "count": 0, "text": "a"}
    for name, values in {"closed": floats, "open": floats, "count": counts, "text": texts}.items():
        columns = {**{k: [v] * n for k, v in good.items()}, name: values}
        want = set()
        for i in range(n):
            try:
                adapter.validate_python({k: column[i] for k, column in columns.items()})
            except ValueError:
                want.add(i)
        assert want and len(want) < n, name
        assert check.check(columns, n).bad == want, name
