"""Records held in memory when neither the store nor the spool takes them: kept, bounded,
the oldest past the bound counted as dropped."""

from __future__ import annotations

from pathlib import Path

from shipway.store.held import Held
from shipway.store.records import LogColumns, columns_of


def _group(service: str, first: int, n: int) -> LogColumns:
    context = (service, "m-1", None, None, None)
    # Two minutes apart from one entry to the next, so that drops are counted per minute.
    entries = [(context, f"r{i}", 120.0 * i, 1.0, 200, "{}", "{}", None, None) for i in range(first, first + n)]
    return columns_of(entries)[0]


def test_held_records_are_kept_oldest_first_until_the_bound(tmp_path: Path) -> None:
    held = Held(10, tmp_path)
    assert not held.keep([_group("a", 0, 4)])
    assert not held.keep([_group("b", 4, 6)])
    assert len(held) == 10
    taken = held.take()
    assert [rid for g in taken for rid in g.request_ids] == [f"r{i}" for i in range(10)]
    assert len(held) == 0 and held.take() == []


def test_past_the_bound_the_oldest_go_and_are_counted_by_minute_and_service(tmp_path: Path) -> None:
    held = Held(5, tmp_path)
    held.keep([_group("a", 0, 3)])
    dropped = held.keep([_group("b", 3, 4)])
    # 7 held for a bound of 5: r0 and r1 of service a go, counted in their own minutes.
    assert dropped == {(0, "a"): 1, (2, "a"): 1}
    assert len(held) == 5
    kept = held.take()
    assert [(g.context[0], list(g.request_ids)) for g in kept] == [("a", ["r2"]), ("b", ["r3", "r4", "r5", "r6"])]
    assert all(len(g.times) == len(g.inputs) == len(g.shadows) == len(g) for g in kept)
