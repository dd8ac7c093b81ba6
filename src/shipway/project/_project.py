"""Project: a user's project folder, loaded once; the spine every command and context runs through.

It owns what was assembled in seven places before: the settings, the service, the one way
to build the pipeline (the service's stages, the `rules` stage, the ids that tag every
answer), the store handle of this process (store/provider.py: one handle, one outage
policy), the gate policy (the one place a gate's result becomes GateFailed, report kept)
and the service mode (what modes off and shadow answer). `shipway serve`, `predict`,
`explain`, the in-process validation suites, `check`, `rules`, `deploy`, `score` and the
dashboard's trace page all take their pipeline from here (docs/architecture.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from shipway.core.artifacts import deployable
from shipway.core.gate import Gate, GateResult
from shipway.core.held_out import read_held_out
from shipway.core.parity import ParityReport, check_parity
from shipway.core.pipeline import Pipeline
from shipway.core.service import Service, load_project, read_ids
from shipway.core.settings import Settings
from shipway.errors import ConfigError, GateFailed, StoreUnavailable
from shipway.registry import checkout, is_registry_name
from shipway.rules.lifecycle import RulesManager, labels_from_manifest
from shipway.rules.live import Active, LiveRules, rules_stage
from shipway.rules.ruleset import RuleSet
from shipway.store import RulesEvent
from shipway.store.provider import StoreProvider

__all__ = ["Project", "RunOn", "enforce", "load_pipeline"]

# How a gate is run: on the caller's thread (None), or handed to another (serving's predict thread).
RunOn = Callable[..., Any] | None
Rules = bool | str | Path  # True: the rules serving would run; a path: that file; False: none


class Project:
    """One project in this process. Cheap to build (settings and service only); the model loads
    when a pipeline is first built, the store opens when first used."""

    def __init__(self, service: Service, settings: Settings, gate: Gate | None = None) -> None:
        self.service = service
        self.settings = settings
        self.gate = gate  # the validation suites as a gate (validation/gate.py), given by the CLI layer
        self.name: str = settings["name"]
        self.mode: str = settings["mode"]
        self.store = StoreProvider(settings["store.url"], settings.root)
        # What modes off and shadow log as the decision taken (the log's mode column says it too).
        self.mode_decision = orjson.dumps({"mode": self.mode, "answer": "default"})

    @classmethod
    def load(cls, target: str | Path, overrides: Mapping[str, Any] | None = None, gate: Gate | None = None) -> Project:
        """The project in `target` (a folder, a service.py or a module path); `overrides` are
        settings by dotted key (CLI flags)."""
        service, settings = load_project(target, overrides)
        return cls(service, settings, gate)

    # -- the model: which artifacts, which ids ------------------------------------------------

    @property
    def artifacts(self) -> Path:
        """The `artifacts` setting, as a path."""
        return self.settings.path("artifacts")

    def ids(self, artifacts: Path | None = None) -> dict[str, str | None]:
        """The ids that tag answers from `artifacts` (default: the setting). The `version` setting
        names the configured artifacts only: a deployed folder carries its own manifest."""
        artifacts = artifacts or self.artifacts
        version = self.settings["version"] or None if artifacts == self.artifacts else None
        return {"service": self.name, **read_ids(artifacts, version), "rules_version": None}

    def labels(self, artifacts: Path | None = None) -> list[str] | None:
        """The labels the model can output, as its training run recorded them (rules are checked
        against them)."""
        return labels_from_manifest(artifacts or self.artifacts)

    def deployed(self, *, create: bool = False) -> RulesEvent | None:
        """The newest deployment in the store's model history, or None (none yet, or the store is
        down). Without `create`, a store that does not exist yet is not created."""
        store = self.store.available() if create else self.store.existing()
        if store is None:
            return None
        try:
            events = store.model_history(self.name, limit=1)
        except StoreUnavailable as err:
            self.store.failed(err)
            return None
        return events[0] if events else None

    def serving_artifacts(self, *, create: bool = False) -> tuple[Path, int | None]:
        """What `shipway serve` loads: the newest deployed artifacts (and the id of their history
        event), else the `artifacts` setting."""
        event = self.deployed(create=create)
        # A folder since removed: serve the artifacts setting. A registered version: its checkout.
        if event is not None and (is_registry_name(event.source) or Path(event.source).is_dir()):
            return self.artifacts_of(event.source), event.id
        return self.artifacts, None

    def artifacts_of(self, source: str) -> Path:
        """The verified folder of a deployment's source: a folder, or a registered version or alias
        (checked out of the registry). Under deploy.root, before anything in it is read."""
        if is_registry_name(source):
            source = str(checkout(self.store.get(), self.settings, source))
        return deployable(source, self.settings)

    # -- the pipeline: the one way to build it ------------------------------------------------

    def rules_manager(
        self,
        artifacts: Path | None = None,
        on_decision: Callable[..., None] | None = None,
        on_swap: Callable[[Active], None] | None = None,
    ) -> RulesManager:
        """The rules lifecycle of this project (rules/lifecycle.py), on the project's store handle."""
        return RulesManager(
            self.settings,
            self.name,
            self.service.schemas(),
            labels=self.labels(artifacts),
            on_decision=on_decision,
            on_swap=on_swap,
            store=self.store,
        )

    def build(
        self,
        live: LiveRules,
        artifacts: Path | None = None,
        *,
        fresh: bool = False,
        ids: Mapping[str, str | None] | None = None,
    ) -> Pipeline:
        """The pipeline on `artifacts`: the service's stages, then the `rules` stage running `live`.
        `fresh` loads the model anew beside one already loaded (a candidate for a model swap);
        `ids` adds to the artifacts' own."""
        artifacts = artifacts or self.artifacts
        service = self.service
        if fresh:
            service = copy.copy(service)  # the live one keeps its loaded state
            service.state, service.loaded = None, False
        all_ids = {**self.ids(artifacts), **(ids or {})}
        all_ids["rules_version"] = live.active.versions[0]
        pipeline = service.setup(artifacts, all_ids)
        pipeline.stages.append(rules_stage(live))
        return pipeline

    def pipeline(self, rules: Rules = True, artifacts: Path | None = None) -> Pipeline:
        """The pipeline the in-process commands run: the model `shipway serve` would load (or the
        one in `artifacts`), and with `rules` True the rules it would run now (the store's history,
        else the rules file, with any shadow or canary rules beside them). A path runs that rules
        file; False no rules."""
        if artifacts is None:
            artifacts, _ = self.serving_artifacts()
        live = LiveRules()
        if rules is True:
            live = self._loaded_rules(artifacts)
        elif not isinstance(rules, bool):
            manager = self.rules_manager(artifacts)
            live.swap(Active(live=manager.compile(Path(rules).read_text(encoding="utf-8"), str(rules))))
        return self.build(live, artifacts)

    def _loaded_rules(self, artifacts: Path) -> LiveRules:
        manager = self.rules_manager(artifacts)
        manager.load()
        return manager.live

    # -- the gate policy ----------------------------------------------------------------------

    def check(self, candidate: Pipeline, what: str, run: RunOn = None) -> GateResult | None:
        """Run the gate on `candidate`; GateFailed (with the suites' report) refuses it. `what`
        names the candidate in the message ("rules v2", "model 2026-11-01"). The passing result
        (what ran), or None without a gate."""
        if self.gate is None:
            return None
        result = run(self.gate, candidate) if run is not None else self.gate(candidate)
        enforce(result, what)
        return result

    def check_model(self, candidate: Pipeline, artifacts: Path, what: str, run: RunOn = None) -> GateResult | None:
        """The gates a model passes before it takes traffic: the parity gate first when its training
        recorded held-out answers (core/parity.py), then the validation suites (their passing result)."""
        if read_held_out(artifacts) is not None:
            tolerance = self.settings["deploy.parity_tolerance"]
            args = (candidate, artifacts, tolerance)
            enforce(run(check_parity, *args) if run is not None else check_parity(*args), what)
        return self.check(candidate, what, run)

    def check_rules(self, pipeline: Pipeline, ruleset: RuleSet, run: RunOn = None) -> GateResult | None:
        """Gate `ruleset` as the rules of `pipeline` (whatever rules it runs now are replaced)."""
        from shipway.rules.live import with_rules

        return self.check(with_rules(pipeline, ruleset), f"rules {ruleset.version}", run)

    # -- the service mode ---------------------------------------------------------------------

    def default_body(self, pipeline: Pipeline) -> bytes:
        """What modes off and shadow answer: `default` from service.py, rendered; b"" in mode on.
        ConfigError when the mode needs it and the service has none."""
        if self.mode == "on":
            return b""
        if not self.service.has_default:
            raise ConfigError(
                f"mode {self.mode!r} answers every request with `default` from service.py, which it "
                f'does not define; add `default = <an instance of the output type>` or set mode = "on".'
            )
        return pipeline.render(pipeline.output_schema.validate(self.service.default))

    def answer(self, pipeline: Pipeline, item: Any) -> bytes:
        """The body /predict answers for one input, in-process: the service mode applied."""
        if self.mode == "off":
            pipeline.parse(item)  # a bad input is refused in every mode, as /predict refuses it
            return self.default_body(pipeline)
        output = pipeline.run(item)
        return self.default_body(pipeline) if self.mode == "shadow" else pipeline.render(output)

    def close(self) -> None:
        self.store.close()


def enforce(result: GateResult | ParityReport, what: str = "") -> None:
    """The gate policy: a failed gate's result becomes GateFailed, with its report kept. Every gate
    (the validation suites, the parity gate) is refused here and nowhere else."""
    if result.ok:
        return
    if isinstance(result, ParityReport):
        raise GateFailed(f"refused by the parity gate: {result.render()}", result.to_dict())
    raise GateFailed(f"{what} refused by the validation gate: {result.summary}", result.report)


def load_pipeline(
    target: str | Path | Project, rules: Rules = True, overrides: Mapping[str, Any] | None = None
) -> Pipeline:
    """The in-process pipeline of the project in `target` (Project.pipeline)."""
    project = target if isinstance(target, Project) else Project.load(target, overrides)
    # An `artifacts` override names the model to load, whatever the store says serves.
    artifacts = project.artifacts if overrides and overrides.get("artifacts") else None
    try:
        return project.pipeline(rules, artifacts)
    finally:
        project.close()
