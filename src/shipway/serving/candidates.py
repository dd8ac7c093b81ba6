"""The model candidate in one worker: following the store's candidate state, and running the
candidate's shadow predictions off the request path (docs/serving.md#model-candidates).

`CandidateManager.sync()` runs every `rules.poll_s` beside the rules and model syncs. When
the service's candidate state (registry/candidates.py) has a new generation it loads the
candidate's version from the registry (its files checked against its manifest before
`load()` runs), beside the live model, and swaps `Runtime.candidate` with one assignment:
shadow or canary. Promoted: the loaded candidate becomes the live version (the model history
records it too, so a restart and the model sync agree). Rolled back: the candidate is dropped
at once. A candidate that fails to load is refused, logged and counted; the live version
serves as before.

`Shadow` holds the shadow work: a bounded queue (batching.max_queue items; what does not fit
is shed and counted) that runs on the worker's predict thread only while it has no live batch
to run, in batches of at most SHADOW_BATCH items, so a live request waits at most one such
batch. Each item is logged under the candidate's version with request id `<id>:shadow` and
decision `{"mode": "shadow", "answer": "live"}`; a failure is counted, never answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter, time
from typing import Any

import orjson

from shipway.core.decided import Decided
from shipway.errors import StoreUnavailable
from shipway.registry import CandidateState, current_candidate
from shipway.serving.models import ModelManager, build_version
from shipway.serving.runtime import Candidate, Runtime, Version

__all__ = ["SHADOW_BATCH", "SHADOW_DECISION", "CandidateManager", "Shadow"]

logger = logging.getLogger("shipway.serving")

SHADOW_BATCH = 16
SHADOW_DECISION = b'{"mode":"shadow","answer":"live"}'
_Work = tuple[Candidate, str, Any, bytes]  # the candidate, the request id, the parsed item, its input JSON


class CandidateManager:
    """This worker's candidate, kept in step with the store's candidate state."""

    def __init__(self, runtime: Runtime, models: ModelManager) -> None:
        self.runtime = runtime
        self.models = models  # its store handle, and the registry checkout
        self.generation = 0  # the state this worker follows
        self.refused: dict[int, str] = {}  # generation -> why its candidate was not loaded

    def sync(self) -> None:
        """Follow the newest candidate state (called off the event loop)."""
        rt = self.runtime
        stores = rt.project.store
        store = stores.available()
        if store is None:
            return  # the outage is logged once by the provider; the current versions keep serving
        try:
            state = current_candidate(store, rt.name)
        except StoreUnavailable as err:
            stores.failed(err)
            return
        if state is None or state.generation == self.generation:
            return
        self.apply(state)

    def apply(self, state: CandidateState) -> None:
        rt = self.runtime
        current = rt.candidate
        if state.mode == "rolled_back":
            rt.candidate = None
        elif state.mode == "promoted":
            rt.candidate = None
            if current is not None and current.version.model_version == state.version:
                rt.set_live(Version(current.version.pipeline, current.version.ids))
            # else: the model sync loads it from the model history, as any deployment
        else:
            if current is not None and current.version.model_version == state.version:
                version = current.version  # a new share or mode for the loaded candidate
            else:
                try:
                    version = build_version(rt, self.models.folder(state.version))
                except Exception as err:
                    self.refused[state.generation] = str(err)
                    self.generation = state.generation  # report once; a new state is tried afresh
                    logger.exception(
                        "the candidate %s was refused at load; the live version serves alone", state.version
                    )
                    if rt.metrics is not None:
                        rt.metrics.error("candidate_refused")
                    rt.candidate = None
                    return
            rt.candidate = Candidate(state, version, version.context(rt.name, rt.mode))
        self.generation = state.generation
        logger.info(
            "candidate state followed",
            extra={
                "candidate": state.version,
                "mode": state.mode,
                "share": state.share,
                "generation": state.generation,
            },
        )

    def describe(self) -> dict[str, Any] | None:
        """What this worker runs as its candidate, for GET / (None: no candidate)."""
        cand = self.runtime.candidate
        refused = self.refused.get(self.generation)
        if cand is None:
            return {"generation": self.generation, "refused": refused} if self.generation else None
        state = cand.state
        return {
            "version": state.version,
            "mode": state.mode,
            "share": state.share,
            "key": state.key,
            "generation": state.generation,
        }


class Shadow:
    """The worker's shadow work: bounded, shed when full, run when the model is idle."""

    def __init__(self, runtime: Runtime, cap: int) -> None:
        self.runtime = runtime
        self.cap = cap
        self.queue: deque[_Work] = deque()
        self.shed = 0
        self.done = 0
        self.failed = 0
        self._wake = asyncio.Event()

    def offer(self, candidate: Candidate, request_id: str, item: Any, inputs: bytes) -> None:
        """Queue one item for the candidate (after the live answer was sent); shed when full."""
        if len(self.queue) >= self.cap:
            self.shed += 1
            if self.runtime.metrics is not None:
                self.runtime.metrics.candidate(candidate.version.model_version, "shadow", "shed")
            return
        self.queue.append((candidate, request_id, item, inputs))
        self._wake.set()

    async def run(self) -> None:
        """The worker's shadow loop (a task from startup to shutdown)."""
        rt = self.runtime
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                batcher = rt.batcher
                if batcher is None or batcher.executor is None:
                    return
                if batcher.running_since is not None or batcher.queued:
                    await asyncio.sleep(max(batcher.max_wait_s, 0.0005))  # live work first
                    continue
                work = self._take()
                if not work:
                    continue
                candidate = work[0][0]
                started = perf_counter()
                try:
                    results = await loop.run_in_executor(batcher.executor, candidate.version.run, [w[2] for w in work])
                except Exception as err:  # run_items should not raise; a shadow never strands anything
                    results = [err] * len(work)
                self._log(candidate, work, results, (perf_counter() - started) * 1000)

    def _take(self) -> list[_Work]:
        """Up to SHADOW_BATCH items of the current shadow candidate; others are dropped (the
        candidate changed since they were queued) and counted as shed."""
        current = self.runtime.candidate
        queue = self.queue
        work: list[_Work] = []
        while queue and len(work) < SHADOW_BATCH:
            w = queue.popleft()
            if current is None or w[0] is not current or current.state.mode != "shadow":
                self.shed += 1
                if self.runtime.metrics is not None:
                    self.runtime.metrics.candidate(w[0].version.model_version, "shadow", "shed")
                continue
            work.append(w)
        return work

    def _log(self, candidate: Candidate, work: list[_Work], results: list[Any], ms: float) -> None:
        rt = self.runtime
        version = candidate.version.model_version
        log = rt.log
        ok = 0
        for (_, request_id, _, inputs), output in zip(work, results, strict=False):
            if isinstance(output, BaseException):
                self.failed += 1
                if log is not None:
                    log.append_failure(rt.name, version, candidate.context[2], 500, ms)
                continue
            ok += 1
            if log is None:
                continue
            pipeline = candidate.version.pipeline
            shadow = None
            context = candidate.context
            if isinstance(output, Decided):
                shadow = output.decision_json or (None if output.decision is None else orjson.dumps(output.decision))
                if output.rules_version != context[2]:
                    context = (context[0], context[1], output.rules_version, context[3], context[4], context[5])
            outputs = pipeline.render_model_output(output) if isinstance(output, Decided) else pipeline.render(output)
            log.add(context, f"{request_id}:shadow", time(), ms, 200, inputs, outputs, SHADOW_DECISION, shadow)
        self.done += ok
        if rt.metrics is not None:
            rt.metrics.candidate(version, "shadow", "answered", ok)
            rt.metrics.candidate(version, "shadow", "failed", len(work) - ok)
