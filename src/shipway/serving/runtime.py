"""One worker's serving state, as public typed members: the live version and the candidate,
the batcher, the metrics, the prediction log, readiness, and the answers every handler
shares (`refuse`, `fail`).

The App (app.py) builds a Runtime and hands it, and only what else they use, to the
handlers (predict.py, introspection.py, admin.py, feedback.py) and to the managers that
keep it in step with the store (models.py, candidates.py, decisions.py). Nothing here
imports those modules, so the serving package has no import circle.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson

from shipway.core.pipeline import Pipeline
from shipway.core.service import Service
from shipway.core.settings import Settings
from shipway.errors import PredictError
from shipway.project import Project
from shipway.registry import CandidateState
from shipway.rules.lifecycle import RulesManager
from shipway.serving.batching import Batcher
from shipway.serving.responses import error_for
from shipway.store.prediction_log import PredictionLog
from shipway.store.records import Context
from shipway.web.http import Send, send_response
from shipway.web.tokens import FailedAttempts

if TYPE_CHECKING:  # imported by serve() only: prometheus_client reads its multiprocess setting on import
    from shipway.serving.metrics import Metrics

__all__ = ["Candidate", "Runtime", "Version", "field_value"]

logger = logging.getLogger("shipway.serving")

PlainLog = Callable[[tuple[str, float, float, bytes, bytes]], None]


@dataclass(eq=False)
class Version:
    """A model version loaded in this worker: its pipeline, the function the batcher runs for
    it (one object, so batches are split by version), and the ids its answers are logged under."""

    pipeline: Pipeline
    ids: dict[str, str | None]
    run: Callable[[list[Any]], list[Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.run = self.pipeline.run_items

    @property
    def model_version(self) -> str:
        return self.ids.get("model_version") or ""

    def context(self, service: str, mode: str | None = None) -> Context:
        ids = self.ids
        return (
            service,
            self.model_version,
            ids.get("rules_version"),
            ids.get("dataset_version"),
            ids.get("run_id"),
            mode,
        )


@dataclass(eq=False)
class Candidate:
    """The candidate this worker runs beside the live version, in the store's state `state`."""

    state: CandidateState
    version: Version
    context: Context

    def sampled(self, request_id: str, item: Any) -> bool:
        """Whether this request falls in the candidate's share: the same answer in every worker
        and replica, for the canary key's value (or the request id) and this candidate."""
        share = self.state.share
        if share >= 1.0:
            return True
        if self.state.key is None:
            value: Any = request_id
        else:
            value = field_value(item, self.state.key)
            if value is None:
                return False  # no key: the live version answers
        digest = zlib.crc32(f"{self.state.version}\0{value}".encode())
        return digest < share * 4_294_967_296


def field_value(item: Any, key: str) -> Any:
    """The value at `key` (`input.customer_id`, or `customer_id`) of a parsed input, or None."""
    value = item
    for part in key.removeprefix("input.").split("."):
        if isinstance(value, dict):
            value = value.get(part)
        else:
            value = getattr(value, part, None)
        if value is None:
            return None
    return value


@dataclass(eq=False)
class Runtime:
    """One worker's serving state. The app sets `live` in preload and the rest in startup;
    managers swap `live` and `candidate` with one assignment each, so a request reads each
    once and is answered and logged wholly by the version it read."""

    project: Project  # the pipeline, rules, store handle and gate policy come from here
    service: Service
    settings: Settings
    name: str = ""
    mode: str = "on"
    max_body: int = 1 << 20
    timeout: float = 10.0
    access_log: bool = False
    # What modes off and shadow answer, and log as the decision taken.
    default_body: bytes = b""
    mode_decision: bytes = b""
    live: Version | None = None
    candidate: Candidate | None = None
    ids: dict[str, str | None] = field(default_factory=dict)
    context: Context = ("", "", None, None, None, None)  # what the live version's log entries share
    rules: RulesManager | None = None
    metrics: Metrics | None = None
    batcher: Batcher | None = None
    log: PredictionLog | None = None
    # The log's way in for a plain entry (mode on, no rules) of the live version; refreshed by refresh_log().
    log_plain: PlainLog | None = None
    attempts: FailedAttempts = field(default_factory=FailedAttempts)
    openapi: bytes | None = None
    routes: list[str] = field(default_factory=list)
    ready: bool = False
    stuck: bool = False
    not_ready_reason: str = "starting: the model is not loaded yet"
    in_flight: int = 0  # published to the metrics once a second

    @classmethod
    def of(cls, project: Project) -> Runtime:
        settings = project.settings
        mode, name = project.mode, project.name
        return cls(
            project=project,
            service=project.service,
            settings=settings,
            name=name,
            mode=mode,
            max_body=settings["serve.max_body_bytes"],
            timeout=settings["serve.predict_timeout_s"],
            access_log=settings["serve.access_log"],
            mode_decision=project.mode_decision,
            context=(name, "", None, None, None, mode),
        )

    @property
    def pipeline(self) -> Pipeline | None:
        """The live version's pipeline."""
        return self.live.pipeline if self.live is not None else None

    def set_live(self, version: Version) -> None:
        """Serve `version` from the next request on (batches queued before run on their own)."""
        model_ids = {k: v for k, v in version.ids.items() if k != "rules_version"}  # the rules keep theirs
        self.update_ids(model_ids)
        version.pipeline.ids = {**self.ids}
        self.live = version
        if self.batcher is not None:
            self.batcher.run = version.run
        self.openapi = None

    def update_ids(self, changes: dict[str, str | None]) -> None:
        """Change the versions the service reports and logs (a new model, new rules)."""
        ids = self.ids
        ids.update(changes)
        self.context = (
            self.name,
            ids.get("model_version") or "",
            ids.get("rules_version"),
            ids.get("dataset_version"),
            ids.get("run_id"),
            self.mode,
        )
        self.refresh_log()

    def refresh_log(self) -> None:
        """Ask the log again for its way in for plain entries: for the current context, and
        None while the log wants every entry through add() (a full buffer, say)."""
        log = self.log
        # With live rules, answers are decided: one the rules did not see (answered across a
        # switch from none) goes through add(), under no rules version.
        plain = log is not None and self.mode == "on" and self.context[2] is None
        self.log_plain = log.plain(self.context) if plain and log is not None else None

    async def refuse(
        self,
        send: Send,
        status: int,
        kind: str,
        body: bytes,
        request_id: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Answer an error found before any endpoint's own work, counted under `other`."""
        if self.metrics is not None:
            self.metrics.request("other", status)
            self.metrics.error(kind)
        await send_response(send, status, body, request_id, headers)

    async def fail(
        self, send: Send, err: BaseException, request_id: str, endpoint: str, started: float, version: str | None = None
    ) -> None:
        """Answer an endpoint's failure: counted, logged for 5xx, and counted in the prediction
        log's rollups under the version that was asked (`version`, else the live one)."""
        status, body, headers = error_for(err, request_id)
        if self.metrics is not None:
            self.metrics.request(endpoint, status, perf_counter() - started if started else None)
            self.metrics.error(orjson.loads(body)["error"]["type"])
        if self.log is not None and endpoint in ("predict", "batch"):
            ids = self.ids
            self.log.append_failure(
                self.name,
                version if version is not None else ids.get("model_version") or "",
                ids.get("rules_version"),
                status,
                (perf_counter() - started) * 1000,
            )
        if status >= 500:
            cause = err.cause if isinstance(err, PredictError) else err
            level = logging.ERROR if status == 500 else logging.WARNING
            logger.log(
                level,
                f"{endpoint} failed: {err}",
                exc_info=(type(cause), cause, cause.__traceback__) if status == 500 else None,
                extra={"status": status},
            )
        await send_response(send, status, body, request_id, headers)
