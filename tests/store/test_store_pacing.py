"""The prediction log writer's pacing: a flush in slices, every entry once, in order."""

from __future__ import annotations

from shipway.store.pacing import SLICE_ENTRIES, slices
from shipway.store.records import LogColumns, columns_of, split_at


def _group(context_name: str, first: int, n: int) -> LogColumns:
    context = (context_name, "m-1", None, None, None, "on")
    entries = [(context, f"r{i}", float(i), 1.0, 200, "{}", "{}", None, None) for i in range(first, first + n)]
    return columns_of(entries)[0]


def _entries(groups: list[LogColumns]) -> list[tuple[str, str]]:
    return [(g.context[0], rid) for g in groups for rid in g.request_ids]


def test_slices_hold_every_entry_once_in_order_and_keep_contexts_apart() -> None:
    groups = [_group("a", 0, 2500), _group("b", 2500, 700), _group("c", 3200, 1)]
    parts = slices(groups, size=1000)
    assert [sum(len(g) for g in s) for s in parts] == [1000, 1000, 1000, 201]
    assert _entries([g for s in parts for g in s]) == _entries(groups)
    for s in parts:
        assert all(len(g) for g in s)
        for g in s:
            assert len({len(getattr(g, name)) for name in ("times", "inputs", "decisions", "shadows")}) == 1


def test_a_batch_within_one_slice_is_passed_as_it_is() -> None:
    groups = [_group("a", 0, 10), _group("b", 10, 5)]
    assert slices(groups, size=1000) == [groups]
    assert slices(groups) == [groups] and SLICE_ENTRIES >= 15
    assert slices([], size=1000) == []


def test_split_at_cuts_one_group_and_keeps_the_rest_as_it_is() -> None:
    groups = [_group("a", 0, 5), _group("b", 5, 5), _group("c", 10, 3)]
    head, rest = split_at(groups, 7)
    assert _entries(head) == _entries(groups)[:7] and _entries(rest) == _entries(groups)[7:]
    assert [g.context[0] for g in head] == ["a", "b"] and [g.context[0] for g in rest] == ["b", "c"]
    assert rest[1] is groups[2]  # untouched groups are passed on, not copied
    assert split_at(groups, 0) == ([], groups) and split_at(groups, 13) == (groups, [])
    assert split_at(groups, 99) == (groups, [])
