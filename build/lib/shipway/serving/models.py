"""Model updates on a running service: load beside the live model, gate, record, swap.

`deploy(artifacts)` loads the new artifacts in this worker beside the live
model, runs the validation gate against the candidate pipeline, and only if
it passes records the deployment in the store's model history and swaps it
in. Every other worker (and replica) sees the new history event within
`rules.poll_s`, loads the same artifacts and swaps. A restart serves the
newest deployed artifacts, not the `artifacts` setting. A worker that cannot
load them keeps its model and logs why. Every folder must lie under
`deploy.root` and match its manifest (core/artifacts.py) before load() runs.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from shipway.core.artifacts import deployable
from shipway.core.pipeline import Pipeline
from shipway.core.service import Service, read_ids
from shipway.errors import GateFailed, LoadError, StoreUnavailable
from shipway.registry import checkout, is_registry_name
from shipway.rules.live import rules_stage
from shipway.store import RulesEvent, Store, store_from_url

if TYPE_CHECKING:
    from shipway.serving.app import App

__all__ = ["ModelManager"]

logger = logging.getLogger("shipway.serving")


class ModelManager:
    """The model deployments of one worker, kept in step with the store's model history."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.applied: int | None = None  # id of the history event this worker serves
        self._store: Store | None = None  # kept open: sync() asks every rules.poll_s

    def newest(self) -> RulesEvent | None:
        """The newest deployment in the store, or None (no store, or never deployed)."""
        try:
            events = self._open().model_history(self.app.name, limit=1)
        except StoreUnavailable:
            self.close()  # reconnect on the next call
            return None
        return events[0] if events else None

    def history(self, limit: int = 50) -> list[RulesEvent]:
        return self._open().model_history(self.app.name, limit=limit)

    def _open(self) -> Store:
        if self._store is None:
            s = self.app.settings
            store = store_from_url(s["store.url"], s.root)
            store.open()
            self._store = store
        return self._store

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    def build(self, artifacts: Path) -> tuple[Pipeline, dict[str, str | None]]:
        """A candidate pipeline on `artifacts`, with the live rules stage; the live model is untouched."""
        app = self.app
        if not artifacts.is_dir():
            raise LoadError(f"the artifacts folder {artifacts} does not exist; pass a folder that train.py wrote")
        service: Service = copy.copy(app.service)
        service.state, service.loaded = None, False
        ids = {**app.ids, **read_ids(artifacts, None)}
        pipeline = service.setup(artifacts, ids)
        assert app.rules is not None
        pipeline.stages.append(rules_stage(app.rules.live))
        return pipeline, ids

    def deploy(
        self, artifacts: str, actor: str | None = None, run_on_predict_thread: Callable[..., object] | None = None
    ) -> RulesEvent:
        """Load, gate, record and swap in a new model (GateFailed or LoadError leave the live one)."""
        app = self.app
        if is_registry_name(artifacts):  # a registered model version or alias (shipway/registry.py)
            artifacts = str(checkout(self._open(), app.settings, artifacts))
        path = deployable(artifacts, app.settings)  # under deploy.root, before anything is read
        pipeline, ids = self.build(path)
        if app.gate is not None:
            result = app.gate(pipeline) if run_on_predict_thread is None else run_on_predict_thread(app.gate, pipeline)
            if not result.ok:  # type: ignore[attr-defined]
                raise GateFailed(
                    f"model {ids['model_version']} refused by the validation gate: {result.summary}",  # type: ignore[attr-defined]
                    result.report,  # type: ignore[attr-defined]
                )
        event = self._open().record_model(app.name, ids["model_version"] or "", str(path), actor=actor)
        self._swap(pipeline, ids, event.id)
        return event

    def sync(self) -> None:
        """Follow a deployment made through another worker or replica."""
        event = self.newest()
        if event is None or event.id == self.applied:
            return
        try:
            pipeline, ids = self.build(deployable(event.source, self.app.settings))
        except Exception:
            logger.exception(
                "cannot load the deployed model %s from %s; keeping the current one", event.version, event.source
            )
            self.applied = event.id  # report once; a new deployment is tried afresh
            return
        self._swap(pipeline, ids, event.id)

    def _swap(self, pipeline: Pipeline, ids: dict[str, str | None], event_id: int) -> None:
        app = self.app
        app.update_ids(ids)
        pipeline.ids = {**app.ids}
        app.pipeline = pipeline
        if app.batcher is not None:
            app.batcher.run = pipeline.run_items  # the next batch runs on the new model
        app._openapi = None
        self.applied = event_id
        logger.info("model swapped", extra={"model_version": ids["model_version"]})
