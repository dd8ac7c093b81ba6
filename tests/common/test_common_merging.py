"""Field-by-field merge of dataclass instances (shipway.common.merging)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest

from shipway.common.merging import combine, greatest, least, merge_fields


@dataclass
class Inner:
    n: int = 0

    def merge(self, other: Inner) -> Inner:
        return Inner(self.n + other.n)


@dataclass
class Part:
    name: str
    rows: int = 0
    total: float = 0.0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(3))
    seen: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, int] = field(default_factory=dict)
    items: list[int] = field(default_factory=list)
    inner: Inner | None = None
    first: float | None = None


def test_counts_add_dicts_merge_lists_join_and_nested_parts_merge() -> None:
    a = Part("p", 2, 1.5, np.array([1, 0, 2]), Counter(x=1), {"a": 1}, [1], Inner(1), 5.0)
    b = Part("p", 3, 0.5, np.array([0, 4, 1]), Counter(x=2, y=1), {"b": 2, "a": 3}, [2], None, None)
    merged = merge_fields(a, b, first=least(a.first, b.first))
    assert merged.name == "p" and merged.rows == 5 and merged.total == 2.0
    assert merged.hist.tolist() == [1, 4, 3]
    assert merged.seen == Counter(x=3, y=1)
    assert merged.by_kind == {"a": 4, "b": 2} and list(merged.by_kind) == ["a", "b"]
    assert merged.items == [1, 2]
    assert merged.inner == Inner(1)  # None gives way to the other part's
    assert merged.first == 5.0
    assert (a.rows, b.rows, a.items) == (2, 3, [1])  # the parts are left as they were


def test_values_that_differ_and_do_not_add_must_be_given() -> None:
    with pytest.raises(ValueError, match=r"cannot merge Part.name: 'p' and 'q' differ and do not add; give"):
        merge_fields(Part("p"), Part("q"))
    assert merge_fields(Part("p"), Part("q"), name="p or q").name == "p or q"
    with pytest.raises(ValueError, match="differ"):
        combine(True, False)  # flags are not counts


def test_a_field_given_that_the_dataclass_lacks_is_named() -> None:
    with pytest.raises(TypeError, match="Part has no field 'nmae' to give; its fields: by_kind, "):
        merge_fields(Part("p"), Part("p"), nmae="x")
    with pytest.raises(TypeError, match="two instances of one dataclass, not Part and Inner"):
        merge_fields(Part("p"), Inner())  # type: ignore[type-var]


def test_least_and_greatest_skip_none() -> None:
    assert least(None, 3.0) == 3.0 and least(2.0, None) == 2.0 and least(2.0, 3.0) == 2.0
    assert greatest(None, None) is None and greatest(2, 3) == 3
