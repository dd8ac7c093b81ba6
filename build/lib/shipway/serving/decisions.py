"""Keeping a worker's rules in step with the store's rules history and the rules file.

The store's history is the one source of truth shared by every worker and
replica: `apply` and `rollback` append to it, and each worker polls it every
`rules.poll_s` and swaps its `LiveRules` when the newest event changes. The
rules file seeds the history when it is empty, and with `rules.watch` a
changed file is applied the same way. Rules that fail their checks are never
recorded, so the rules serving stay the last good ones. While the store is
down, workers keep the rules they have.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from shipway.core.schema import Schema
from shipway.core.settings import Settings
from shipway.errors import GateFailed, RulesError, StoreError, StoreUnavailable
from shipway.rules import Decision, RuleSet, load_rules
from shipway.rules.live import META_SCHEMA, Active, LiveRules
from shipway.store import RulesEvent, Store, store_from_url

__all__ = ["MODES", "RulesManager", "UnknownVersion", "labels_from_manifest"]

logger = logging.getLogger("shipway.rules")

MODES = ("on", "shadow", "canary", "off")


class UnknownVersion(StoreError):
    """A rollback named a rules version the history does not hold."""


class RulesManager:
    """The rules of one worker: compiled, checked, versioned in the store, swapped atomically."""

    def __init__(
        self,
        settings: Settings,
        service: str,
        schemas: tuple[Schema, Schema],
        labels: Collection[str] | None = None,
        on_decision: Callable[[Decision], None] | None = None,
        on_swap: Callable[[Active], None] | None = None,
    ) -> None:
        self.service = service
        self.live = LiveRules(on_decision)
        self._input_schema = schemas[0].json_schema()
        self._output_schema = schemas[1].json_schema()
        self._labels = labels
        self._on_swap = on_swap
        self._store_url: str = settings["store.url"]
        self._root = settings.root
        self._file: Path | None = settings.path("rules.file") if settings["rules.file"] else None
        self._watch: bool = settings["rules.watch"]
        self._file_stamp: tuple[int, int] | None = None
        self._store: Store | None = None
        self._store_down_logged = False
        self._newest: int | None = None  # id of the newest history event applied
        self._compiled: dict[tuple[str, str], RuleSet] = {}
        # Set by whoever can run the validation suites: raises GateFailed to refuse rules.
        self.gate: Callable[[RuleSet], None] | None = None

    # -- checking --------------------------------------------------------------

    def compile(self, source: str, filename: str = "rules.yaml") -> RuleSet:
        """Check and compile rules against this service's schemas; RulesError lists every problem."""
        key = (filename, source)
        if key not in self._compiled:
            self._compiled[key] = load_rules(
                source,
                input_schema=self._input_schema,
                output_schema=self._output_schema,
                labels=self._labels,
                filename=filename,
                meta_schema=META_SCHEMA,
            )
        return self._compiled[key]

    # -- start-up, in the parent process (before fork) -------------------------

    def preload(self) -> None:
        """Check the rules file (a bad one stops `serve`), and seed the history with it."""
        file_rules = self._read_file() if self._file else None
        if file_rules is not None:
            self._swap(Active(live=file_rules))
        try:
            self.sync()
        finally:
            self.close()  # no connection may cross the fork

    def _read_file(self) -> RuleSet:
        assert self._file is not None
        try:
            text = self._file.read_text(encoding="utf-8")
            stat = self._file.stat()
        except OSError as err:
            raise RulesError(f"cannot read the rules file {self._file} (rules.file): {err}") from None
        self._file_stamp = (stat.st_mtime_ns, stat.st_size)
        return self.compile(
            text, str(self._file.relative_to(self._root) if self._file.is_relative_to(self._root) else self._file)
        )

    # -- keeping in step (a worker calls this every rules.poll_s, off the event loop) --

    def sync(self) -> None:
        """Apply a changed rules file (with rules.watch), then the newest history event."""
        store = self._open_store()
        if store is None:
            return
        try:
            if self._watch and self._file is not None:
                self._watch_file(store)
            events = store.rules_history(self.service, limit=50)
            if not events and self.live.active.live is not None and self._file is not None:
                rules = self.live.active.live
                store.record_rules(
                    self.service, rules.version, rules.source, actor="rules.file", options={"mode": "on"}
                )
                events = store.rules_history(self.service, limit=50)
        except StoreUnavailable as err:
            self._store_down(err)
            return
        self._store_up()  # back only once it answered: on a full disk it opens, then fails to write
        if events and events[0].id != self._newest:
            active = self._active_from(events)
            if active is not None:
                self._swap(active)
                self._newest = events[0].id

    def _watch_file(self, store: Store) -> None:
        assert self._file is not None
        try:
            stat = self._file.stat()
        except OSError:
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._file_stamp:
            return
        try:
            rules = self._read_file()
            if self.gate is not None:
                self.gate(rules)
        except (RulesError, GateFailed) as err:
            self._file_stamp = stamp  # report a bad file once, not every poll
            logger.error("the changed rules file was refused; the current rules keep serving:\n%s", err)
            return
        active = store.active_rules(self.service)
        if active is None or active.version != rules.version or active.source != rules.source:
            store.record_rules(self.service, rules.version, rules.source, actor="file-watch", options={"mode": "on"})
            logger.info("rules file changed: applied version %s", rules.version)

    def _active_from(self, events: list[RulesEvent]) -> Active | None:
        """What the history says should run: the newest on/off/rollback event is live, and a
        newer shadow or canary event runs beside it."""
        live_event = next((e for e in events if e.action == "rollback" or _mode(e) in ("on", "off")), None)
        newest = events[0]
        try:
            live = self._rules_of(live_event) if live_event is not None and _mode(live_event) != "off" else None
            candidate = self._rules_of(newest) if newest is not live_event else None
        except RulesError as err:
            # Recorded rules were checked when applied; the schemas may have changed since.
            logger.error("recorded rules no longer pass their checks; keeping the current rules:\n%s", err)
            return None
        if candidate is None:
            return Active(live=live)
        return Active(
            live=live,
            candidate=candidate,
            candidate_mode=_mode(newest),
            canary=float(newest.options.get("canary", 0.0) or 0.0),  # type: ignore[arg-type]
            canary_key=newest.options.get("canary_key"),  # type: ignore[arg-type]
        )

    def _rules_of(self, event: RulesEvent) -> RuleSet:
        return self.compile(event.source, f"rules {event.version}")

    # -- admin operations ------------------------------------------------------

    def apply(
        self,
        source: str,
        *,
        mode: str = "on",
        canary: float | None = None,
        canary_key: str | None = None,
        actor: str | None = None,
        filename: str | None = None,
    ) -> tuple[RulesEvent, RuleSet]:
        """Check, record and swap in new rules; RulesError leaves everything as it was."""
        if mode not in MODES:
            raise RulesError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if mode == "canary" and not (canary is not None and 0 < canary <= 1):
            raise RulesError(f"mode canary needs a share between 0 and 1 (the --canary flag), got {canary!r}")
        rules = self.compile(source, filename or "applied rules")
        if self.gate is not None and mode in ("on", "canary"):
            self.gate(rules)  # shadow rules answer nobody, so they need no gate
        options: dict[str, Any] = {"mode": mode}
        if mode == "canary":
            options.update(canary=canary, canary_key=canary_key)
        event = self._require_store().record_rules(self.service, rules.version, source, actor=actor, options=options)
        self.sync()
        return event, rules

    def rollback(self, version: str | None = None, actor: str | None = None) -> RulesEvent:
        """Make an earlier version live again (default: the live version before the current one)."""
        store = self._require_store()
        history = store.rules_history(self.service, limit=200)
        if version is None:
            lives = [e for e in history if e.action == "rollback" or _mode(e) == "on"]
            earlier = [e for e in lives if lives and e.version != lives[0].version]
            if not earlier:
                raise UnknownVersion(f"service {self.service!r} has no earlier rules version to roll back to")
            version = earlier[0].version
        target = store.rules_version(self.service, version)
        if target is None:
            known = ", ".join(dict.fromkeys(e.version for e in history)) or "none"
            raise UnknownVersion(f"rules version {version!r} is not in the history of {self.service!r}; known: {known}")
        self.compile(target.source, f"rules {version}")  # still valid against today's schemas?
        event = store.record_rules(
            self.service, version, target.source, action="rollback", actor=actor, options={"mode": "on"}
        )
        self.sync()
        return event

    def current(self) -> RuleSet | None:
        """The live rules as the store's history (else the rules file) has them; read-only."""
        store = self._require_store()
        events = store.rules_history(self.service, limit=50)
        if events:
            active = self._active_from(events)
            return active.live if active is not None else None
        return self._read_file() if self._file is not None else None

    def history(self, limit: int = 20) -> list[RulesEvent]:
        return self._require_store().rules_history(self.service, limit=limit)

    # -- the store connection --------------------------------------------------

    def _open_store(self) -> Store | None:
        if self._store is None:
            try:
                store = store_from_url(self._store_url, self._root)
                store.open()
            except StoreUnavailable as err:
                self._store_down(err)
                return None
            self._store = store
        return self._store

    def _require_store(self) -> Store:
        store = self._open_store()
        if store is None:
            raise StoreUnavailable(
                f"the store {self._store_url} is unreachable; rules are versioned there so that every "
                f"worker applies them, so try again when it is back (the current rules keep serving)"
            )
        return store

    def _store_up(self) -> None:
        if self._store_down_logged:
            logger.info("rules store is back")
            self._store_down_logged = False

    def _store_down(self, err: StoreError) -> None:
        if not self._store_down_logged:
            logger.warning("rules store unavailable, keeping the current rules: %s", err)
            self._store_down_logged = True
        self.close()

    def close(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            finally:
                self._store = None

    def _swap(self, active: Active) -> None:
        if active.versions != self.live.active.versions:
            logger.info("rules swapped", extra={"live": active.versions[0], "candidate": active.versions[1]})
        self.live.swap(active)
        if self._on_swap is not None:
            self._on_swap(active)


def _mode(event: RulesEvent) -> str:
    return str(event.options.get("mode", "on"))


def labels_from_manifest(artifacts: Path) -> list[str] | None:
    """The labels the model can output, as the training run recorded them, for checking rules."""
    try:
        labels = json.loads((artifacts / "manifest.json").read_text()).get("labels")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(label) for label in labels] if isinstance(labels, list) else None
