"""A service's model candidate: the registered version that runs beside its live model, in
shadow or as a canary, until it is promoted or rolled back (docs/registry.md).

The state lives in the store (`model_candidates`, store/candidates.py), one history per
service, as rules do: whoever changes it (`shipway rollout`, a test, an operator) writes a new
generation, and every worker and replica of the service follows within `rules.poll_s`.
Below the capabilities, so that serving (which follows the state) and deploy (which decides
it) both import it.
"""

from __future__ import annotations

import math

from shipway.errors import RegistryError
from shipway.registry.versions import resolve, who
from shipway.store.base import Store
from shipway.store.candidates import CANDIDATE_MODES, CandidateConflict, CandidateState

__all__ = [
    "CANDIDATE_MODES",
    "LIVE_ALIAS",
    "CandidateConflict",
    "CandidateState",
    "candidate_history",
    "current_candidate",
    "set_candidate",
]

# The alias a promotion moves to the promoted version.
LIVE_ALIAS = "live"


def current_candidate(store: Store, service: str) -> CandidateState | None:
    """The service's newest candidate state, or None if it never had a candidate. A state in
    mode promoted or rolled_back means no candidate runs (`state.active` is False)."""
    events = store.candidate_events(service, limit=1)
    return events[0] if events else None


def candidate_history(store: Store, service: str, limit: int | None = None) -> list[CandidateState]:
    """Every change of the service's candidate, newest first."""
    return store.candidate_events(service, limit)


def set_candidate(
    store: Store, service: str, state: CandidateState, *, expected_generation: int | None = None
) -> CandidateState:
    """Make `state` the service's candidate state (atomic; the change is kept in the history
    with its actor and reason) and return it as stored, with its generation and time.

    `state.version` may be a version, a unique prefix or an alias: the registered version it
    names is stored. Shadow and canary need a share in (0, 1]; promoted and rolled_back name
    the candidate they end (a share is ignored). A promotion records the version as the
    service's live model (its model history, so every worker and a restart serve it) and moves
    the `live` alias. With `expected_generation`, CandidateConflict if the state moved on.
    """
    if state.mode not in CANDIDATE_MODES:
        raise RegistryError(
            f"candidate mode {state.mode!r} is not one of {', '.join(CANDIDATE_MODES)}; "
            "use shadow or canary to start, promoted or rolled_back to end."
        )
    share = float(state.share)
    if state.active and not (math.isfinite(share) and 0 < share <= 1):
        raise RegistryError(
            f"a {state.mode} candidate needs a share of traffic in (0, 1], got {state.share!r}; "
            "1 shadows all traffic, 0.1 a tenth."
        )
    if state.key is not None and not state.key.strip():
        raise RegistryError("the canary key is empty; name a request field such as input.customer_id, or pass None")
    version = resolve(store, state.version).version
    if not state.active:
        current = current_candidate(store, service)
        if current is None or not current.active:
            raise RegistryError(
                f"service {service!r} has no candidate in shadow or canary to mark {state.mode}; "
                "start one first (mode shadow or canary)."
            )
        if current.version != version:
            raise RegistryError(
                f"the candidate of {service!r} is {current.version}, not {version}; "
                f"name the current candidate to mark it {state.mode}."
            )
        share = 0.0
    stored = CandidateState(
        version=version,
        mode=state.mode,
        share=share,
        key=state.key,
        reason=state.reason,
        actor=state.actor or who(),
    )
    return store.write_candidate(
        service,
        stored,
        expected_generation=expected_generation,
        live_alias=LIVE_ALIAS if state.mode == "promoted" else None,
    )
