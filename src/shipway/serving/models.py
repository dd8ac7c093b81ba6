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
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path

from shipway.core.artifacts import deployable
from shipway.core.held_out import read_held_out
from shipway.core.parity import parity_gate
from shipway.core.service import Service, read_ids
from shipway.errors import GateFailed, LoadError, StoreUnavailable
from shipway.registry import checkout, is_registry_name
from shipway.rules.live import rules_stage
from shipway.serving.runtime import Runtime, Version
from shipway.store import RulesEvent, Store, store_from_url

__all__ = ["ModelManager", "build_version"]

logger = logging.getLogger("shipway.serving")


class ModelManager:
    """The model deployments of one worker, kept in step with the store's model history."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.applied: int | None = None  # id of the history event this worker serves
        self._store: Store | None = None  # kept open: sync() asks every rules.poll_s

    def newest(self) -> RulesEvent | None:
        """The newest deployment in the store, or None (no store, or never deployed)."""
        try:
            events = self._open().model_history(self.runtime.name, limit=1)
        except StoreUnavailable:
            self.close()  # reconnect on the next call
            return None
        return events[0] if events else None

    def history(self, limit: int = 50) -> list[RulesEvent]:
        return self._open().model_history(self.runtime.name, limit=limit)

    def open(self) -> Store:
        """This worker's store handle for model and candidate reads (kept open between polls)."""
        return self._open()

    def _open(self) -> Store:
        if self._store is None:
            s = self.runtime.settings
            store = store_from_url(s["store.url"], s.root)
            store.open()
            self._store = store
        return self._store

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    def folder(self, source: str) -> Path:
        """The verified folder of a deployment's source: a folder, or a registered version or alias."""
        if is_registry_name(source):
            source = str(checkout(self._open(), self.runtime.settings, source))
        return deployable(source, self.runtime.settings)  # under deploy.root, before anything is read

    def deploy(
        self, artifacts: str, actor: str | None = None, run_on_predict_thread: Callable[..., object] | None = None
    ) -> RulesEvent:
        """Load, gate, record and swap in a new model (GateFailed or LoadError leave the live one)."""
        rt = self.runtime
        path = self.folder(artifacts)
        version = build_version(rt, path)
        pipeline, ids = version.pipeline, version.ids
        if read_held_out(path) is not None:
            # The parity gate first: the candidate answers its training run's held-out examples as
            # recorded (core/parity.py), or GateFailed with the first differing examples.
            tolerance = rt.settings["deploy.parity_tolerance"]
            if run_on_predict_thread is None:
                parity_gate(pipeline, path, tolerance)
            else:
                run_on_predict_thread(parity_gate, pipeline, path, tolerance)
        if rt.gate is not None:
            result = rt.gate(pipeline) if run_on_predict_thread is None else run_on_predict_thread(rt.gate, pipeline)
            if not result.ok:  # type: ignore[attr-defined]
                raise GateFailed(
                    f"model {ids['model_version']} refused by the validation gate: {result.summary}",  # type: ignore[attr-defined]
                    result.report,  # type: ignore[attr-defined]
                )
        event = self._open().record_model(rt.name, ids["model_version"] or "", str(path), actor=actor)
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
    """A pipeline on `artifacts` with the live rules stage, beside the live model (untouched)."""
    if not artifacts.is_dir():
        raise LoadError(f"the artifacts folder {artifacts} does not exist; pass a folder that train.py wrote")
    service: Service = copy.copy(rt.service)
    service.state, service.loaded = None, False
    ids = {**rt.ids, **read_ids(artifacts, None)}
    pipeline = service.setup(artifacts, ids)
    assert rt.rules is not None
    pipeline.stages.append(rules_stage(rt.rules.live))
    return Version(pipeline, ids)
