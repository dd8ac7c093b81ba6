"""The candidate-state API on both backends: validation, generations, the history with actor
and reason, promotion recording the live model and moving the `live` alias, the race."""

from __future__ import annotations

import threading

import pytest

from shipway.errors import RegistryError
from shipway.registry import (
    CandidateConflict,
    CandidateState,
    candidate_history,
    current_candidate,
    set_candidate,
)
from shipway.store import open_store
from shipway.store.registry import ModelVersion

pytest_plugins = ["store_fixtures"]


def _versions(store: object, *names: str) -> None:
    for i, name in enumerate(names):
        store.register_model_version(ModelVersion(name, f"{i}" * 64))  # type: ignore[attr-defined]


def test_candidate_lifecycle_and_history(store_url: str) -> None:
    with open_store(store_url) as store:
        _versions(store, "lr-aaaa", "lr-bbbb")
        store.set_alias("challenger", "lr-bbbb", "ana")
        assert current_candidate(store, "svc-cand") is None
        shadow = set_candidate(
            store, "svc-cand", CandidateState("challenger", "shadow", 0.25, reason="try it", actor="ana")
        )
        assert (shadow.version, shadow.mode, shadow.share, shadow.generation) == ("lr-bbbb", "shadow", 0.25, 1)
        assert shadow.changed_at > 0 and shadow.active
        canary = set_candidate(
            store, "svc-cand", CandidateState("lr-bbbb", "canary", 0.1, key="input.customer", actor="bo")
        )
        assert canary.generation == 2 and current_candidate(store, "svc-cand") == canary
        assert current_candidate(store, "another-service") is None  # per service
        promoted = set_candidate(store, "svc-cand", CandidateState("lr-bbbb", "promoted", reason="good", actor="cy"))
        assert promoted.share == 0.0 and not promoted.active
        # Promotion: the service's live model is the version (its model history), and `live` moved.
        [deployed] = store.model_history("svc-cand", limit=1)
        assert (deployed.version, deployed.source, deployed.actor) == ("lr-bbbb", "lr-bbbb", "cy")
        assert store.get_alias("live") == "lr-bbbb"
        assert store.alias_history("live")[0].note == "good"
        history = candidate_history(store, "svc-cand")
        assert [(s.generation, s.mode, s.actor) for s in history] == [
            (3, "promoted", "cy"),
            (2, "canary", "bo"),
            (1, "shadow", "ana"),
        ]
        assert history[2].reason == "try it" and history[1].key == "input.customer"


def test_candidate_refusals(store_url: str) -> None:
    with open_store(store_url) as store:
        _versions(store, "nb-aaaa", "nb-bbbb")
        with pytest.raises(RegistryError, match="no model version 'nope'"):
            set_candidate(store, "svc-ref", CandidateState("nope", "shadow"))
        with pytest.raises(RegistryError, match=r"share of traffic in \(0, 1\], got 0"):
            set_candidate(store, "svc-ref", CandidateState("nb-aaaa", "canary", 0.0))
        with pytest.raises(RegistryError, match="not one of shadow, canary, promoted, rolled_back"):
            set_candidate(store, "svc-ref", CandidateState("nb-aaaa", "live"))  # type: ignore[arg-type]
        with pytest.raises(RegistryError, match="no candidate in shadow or canary to mark rolled_back"):
            set_candidate(store, "svc-ref", CandidateState("nb-aaaa", "rolled_back"))
        set_candidate(store, "svc-ref", CandidateState("nb-aaaa", "shadow"))
        with pytest.raises(RegistryError, match="the candidate of 'svc-ref' is nb-aaaa, not nb-bbbb"):
            set_candidate(store, "svc-ref", CandidateState("nb-bbbb", "promoted"))
        rolled = set_candidate(store, "svc-ref", CandidateState("nb-aaaa", "rolled_back", reason="p99 breached"))
        assert rolled.mode == "rolled_back" and store.model_history("svc-ref") == []  # the live model stays
        assert store.get_alias("live") is None


def test_candidate_compare_and_set(store_url: str) -> None:
    with open_store(store_url) as store:
        _versions(store, "cas-aaaa")
        first = set_candidate(store, "svc-cas", CandidateState("cas-aaaa", "shadow"))
        with pytest.raises(CandidateConflict, match="at generation 1, not 0"):
            set_candidate(store, "svc-cas", CandidateState("cas-aaaa", "canary", 0.5), expected_generation=0)
        second = set_candidate(
            store, "svc-cas", CandidateState("cas-aaaa", "canary", 0.5), expected_generation=first.generation
        )
        assert second.generation == 2


def test_candidate_writers_racing_never_share_a_generation(store_url: str) -> None:
    """Writers on their own connections: each change gets its own generation, or is refused."""
    with open_store(store_url) as store:
        _versions(store, "race-aaaa")
    results: list[int] = []
    conflicts: list[Exception] = []

    def write(n: int) -> None:
        with open_store(store_url) as own:
            for _ in range(5):
                try:
                    state = set_candidate(own, "svc-race", CandidateState("race-aaaa", "shadow", 1.0, actor=f"w{n}"))
                    results.append(state.generation)
                except CandidateConflict as err:
                    conflicts.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(set(results)) and len(results) + len(conflicts) == 20
    with open_store(store_url) as store:
        assert sorted(s.generation for s in candidate_history(store, "svc-race")) == sorted(results)
