"""The model registry: immutable versions and aliases (versions.py), and each service's model
candidate, the version running beside the live one in shadow or canary (candidates.py).

Beside store and rules in the layers (DESIGN.md), so that deploy and serving both use it.
See docs/registry.md.
"""

from __future__ import annotations

from shipway.registry.candidates import (
    CANDIDATE_MODES,
    LIVE_ALIAS,
    CandidateConflict,
    CandidateState,
    candidate_history,
    current_candidate,
    set_candidate,
)
from shipway.registry.versions import (
    PRODUCTION_ALIASES,
    checkout,
    is_registry_name,
    materialize,
    move_alias,
    register_run,
    resolve,
    who,
)

__all__ = [
    "CANDIDATE_MODES",
    "LIVE_ALIAS",
    "PRODUCTION_ALIASES",
    "CandidateConflict",
    "CandidateState",
    "candidate_history",
    "checkout",
    "current_candidate",
    "is_registry_name",
    "materialize",
    "move_alias",
    "register_run",
    "resolve",
    "set_candidate",
    "who",
]
