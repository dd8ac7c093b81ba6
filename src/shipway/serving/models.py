"""Model updates on a running service: load beside the live model, gate, record, swap.

`deploy(artifacts)` loads the new artifacts in this worker beside the live
model, runs the validation gate against the candidate pipeline, and only if
it passes records the deployment in the store's model history and swaps it
in. Every other worker (and replica) sees the new history event within
`rules.poll_s`, loads the same artifacts and swaps. A restart serves the
newest deployed artifacts, not the `artifacts` setting. A worker that cannot
load them keeps its model and logs why. Every folder must lie under
`deploy.root` and match its manifest (core/artifacts.py) before load() runs. A
history event whose source is a registered version's name (a promoted candidate,
registry/candidates.py) is checked out of the registry first.

Everything here comes from the project: the store handle (its one outage policy), the
folder of a deployment, the pipeline of a new version, and the gates (parity, then the
suites) through its gate policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from shipway.errors import LoadError, StoreUnavailable
from shipway.registry import is_registry_name
from shipway.serving.runtime import Runtime, Version
from shipway.store import RulesEvent, Store

__all__ = ["ModelManager", "build_version"]

logger = logging.getLogger("shipway.serving")


class ModelManager:
    """The model deployments of one worker, kept in step with the store's model history."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.project = runtime.project
        self.applied: int | None = None  # id of the history event this worker serves

    def newest(self) -> RulesEvent | None:
        """The newest deployment in the store, or None (no store, or never deployed)."""
        return self.project.deployed(create=True)

    def history(self, limit: int = 50) -> list[RulesEvent]:
        return self.store().model_history(self.runtime.name, limit=limit)

    def store(self) -> Store:
        """The project's store handle (StoreUnavailable while it is down)."""
        return self.project.store.get()

    def folder(self, source: str) -> Path:
        """The verified folder of a deployment's source: a folder, or a registered version or alias."""
        return self.project.artifacts_of(source)

    def deploy(
        self, artifacts: str, actor: str | None = None, run_on_predict_thread: Callable[..., object] | None = None
    ) -> RulesEvent:
        """Load, gate, record and swap in a new model (GateFailed or LoadError leave the live one)."""
        rt = self.runtime
        path = self.folder(artifacts)
        version = build_version(rt, path)
        # The parity gate, then the suites, beside the live model (on the predict thread when given).
        self.project.check_model(version.pipeline, path, f"model {version.model_version}", run_on_predict_thread)
        try:
            event = self.store().record_model(rt.name, version.model_version, str(path), actor=actor)
        except StoreUnavailable as err:
            self.project.store.failed(err)
            raise
        self._swap(version, event.id)
        return event

    def sync(self) -> None:
        """Follow a deployment made through another worker or replica."""
        event = self.newest()
        if event is None or event.id == self.applied:
            return
        if event.version == self.runtime.ids.get("model_version") and is_registry_name(event.source):
            self.applied = event.id  # a promoted candidate: this worker swapped it in already
            return
        try:
            version = build_version(self.runtime, self.folder(event.source))
        except Exception:
            logger.exception(
                "cannot load the deployed model %s from %s; keeping the current one", event.version, event.source
            )
            self.applied = event.id  # report once; a new deployment is tried afresh
            return
        self._swap(version, event.id)

    def _swap(self, version: Version, event_id: int) -> None:
        self.runtime.set_live(version)  # the next request runs on the new model
        self.applied = event_id
        logger.info("model swapped", extra={"model_version": version.model_version})


def build_version(rt: Runtime, artifacts: Path) -> Version:
    """A pipeline on `artifacts` with the live rules stage, beside the live model (untouched),
    built by the project."""
    if not artifacts.is_dir():
        raise LoadError(f"the artifacts folder {artifacts} does not exist; pass a folder that train.py wrote")
    assert rt.rules is not None
    pipeline = rt.project.build(rt.rules.live, artifacts, fresh=True)
    return Version(pipeline, dict(pipeline.ids))
