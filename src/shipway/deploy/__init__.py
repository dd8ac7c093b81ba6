"""Deploy: model versions taken to production (a capability; docs/deploy.md).

Each concept is a module of its own: the parity gate (`parity`), rollouts of a candidate version
through the plan's steps of shadow and canary shares to promotion, with guards on the prediction
log's figures that roll it back at once (`plan`, `guards`, `rollout`), the image (`container`,
`lock`, `start`) and the Kubernetes manifests (`kubernetes`).
"""

from __future__ import annotations

from shipway.deploy.guards import Breach, Verdict, judge
from shipway.deploy.plan import Guards, Plan, Step, load_plan
from shipway.deploy.rollout import Decision, Rollout, RolloutStatus

__all__ = [
    "Breach",
    "Decision",
    "Guards",
    "Plan",
    "Rollout",
    "RolloutStatus",
    "Step",
    "Verdict",
    "judge",
    "load_plan",
]
