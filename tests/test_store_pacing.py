"""The prediction log writer's pacing: a flush in slices, every entry once, in order."""

from __future__ import annotations

from shipway.store.pacing import paced
from shipway.store.records import LogColumns, columns_of


def _group(context_name: str, first: int, n: int) -> LogColumns:
    context = (context_name, "m-1", None, None, None, "on")
    entries = [(context, f"r{i}", float(i), 1.0, 200, "{}", "{}", None, None) for i in range(first, first + n)]
    return columns_of(entries)[0]


def _entries(groups: list[LogColumns]) -> list[tuple[str, str]]:
    return [(g.context[0], rid) for g in groups for rid in g.request_ids]


def test_slices_hold_every_entry_once_in_order_and_keep_contexts_apart() -> None:
    groups = [_group("a", 0, 2500), _group("b", 2500, 700), _group("c", 3200, 1)]
    slices = list(paced(groups, size=1000))
    assert [sum(len(g) for g in s) for s in slices] == [1000, 1000, 1000, 201]
    assert _entries([g for s in slices for g in s]) == _entries(groups)
    for s in slices:
        assert all(len(g) for g in s)
        for g in s:
            assert len({len(getattr(g, name)) for name in ("times", "inputs", "decisions", "shadows")}) == 1


def test_a_batch_within_one_slice_is_passed_as_it_is() -> None:
    groups = [_group("a", 0, 10), _group("b", 10, 5)]
    assert list(paced(groups, size=1000)) == [groups]
    assert list(paced([], size=1000)) == []
