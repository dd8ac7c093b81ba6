"""Alert evaluation: each rule's metric over the window ending now, its state, and one message per change.

    alerter = Alerter(load_alerts("alerts.yaml"), "banking77", "sqlite:///.shipway/shipway.db")
    for e in alerter.evaluate():
        print(e.line())

Deduplication lives in the store: `Store.alert_transition` records the state atomically and
answers True only for the caller that changed it, so a problem that lasts alerts once, its
recovery alerts once, and any number of workers or processes evaluating the same rule send
one message between them. A window without enough data ("no data") changes nothing: a
firing alert keeps firing until data shows it recovered. docs/alerts.md has the details.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.errors import ShipwayError, StoreError, StoreUnavailable
from shipway.monitoring.alerts.alert_rules import AlertRule, AlertRules, Metric
from shipway.notify import Delivery
from shipway.store import Store, open_store
from shipway.store.provider import StoreProvider

if TYPE_CHECKING:
    from shipway.monitoring.alerts._drift_values import ProfileCache

__all__ = ["STATES", "Alerter", "Evaluation", "metric_value"]

logger = logging.getLogger("shipway.monitoring")

STATES = ("firing", "ok", "no_data", "error")


@dataclass
class Evaluation:
    """One rule evaluated once. `changed` says the store recorded a new state (a message was due)."""

    rule: AlertRule
    service: str
    state: str  # firing, ok, no_data (too little data to judge) or error (it could not be computed)
    value: float | None
    since: float
    until: float
    requests: int = 0
    labelled: int = 0
    reason: str = ""  # why there is no data, or the error
    changed: bool = False
    firing_since: float | None = None  # on recovery: when the alert started firing
    versions: dict[str, list[str]] = field(default_factory=dict)  # model and rules versions seen
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        """What a message says happened: "firing", "resolved", or None when nothing changed."""
        if not self.changed:
            return None
        return "firing" if self.state == "firing" else "resolved"

    def line(self) -> str:
        """One line for a terminal or a log."""
        rule = self.rule
        head = f"{self.state.upper():8} {rule.name}: "
        if self.value is None:
            body = f"{rule.metric.name} has no value over the last {rule.window} ({self.reason})"
        else:
            sign = ">" if rule.comparison == "above" else "<"
            body = f"{rule.metric.name} = {number(self.value)} (alert when {sign} {number(rule.threshold)}) over the last {rule.window}"
            if self.reason:
                body += f" ({self.reason})"
        if self.status is not None:
            sent = ", ".join(f"{d.url} {'ok' if d.ok else 'FAILED: ' + str(d.error)}" for d in self.deliveries)
            body += f"; {self.status}, sent to {sent or 'no channel'}"
        return head + body

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.rule.name,
            "service": self.service,
            "state": self.state,
            "status": self.status,
            "metric": self.rule.metric.name,
            "value": self.value,
            "comparison": self.rule.comparison,
            "threshold": self.rule.threshold,
            "window": self.rule.window,
            "since": self.since,
            "until": self.until,
            "requests": self.requests,
            "labelled": self.labelled,
            "severity": self.rule.severity,
            "reason": self.reason,
            "firing_since": self.firing_since,
            "versions": self.versions,
            "deliveries": [d.to_dict() for d in self.deliveries],
        }


def number(value: float) -> str:
    """A metric value for people: up to four significant digits."""
    return f"{value:.4g}"


def metric_value(metric: Metric, totals: Mapping[str, Any]) -> tuple[float | None, int | None]:
    """The metric's value in `totals` (None: no value in this window) and, for an outcome, its count."""
    family = metric.path[0]
    if family in ("routing", "rules_fired"):
        # Shares of the decided predictions: a queue (or rule) absent from a window that has
        # decisions had a share of 0; a window without decisions has no share at all.
        shares = totals.get(family) or {}
        return (float(shares.get(metric.path[1], 0.0)) if shares else None), None
    if family == "outcomes":
        outcome = (totals.get("outcomes") or {}).get(metric.path[1])
        if not outcome:
            return None, 0
        return _float(outcome.get(metric.path[2])), int(outcome.get("count") or 0)
    if family == "per_class":
        row = (totals.get("per_class") or {}).get(metric.path[1])
        return (_float(row.get(metric.path[2])) if row else None), None
    value: Any = totals
    for key in metric.path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return _float(value), None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class Alerter:
    """A project's alert rules, evaluated against the store, with messages sent on each change.

    The constructor only stores its arguments; the store opens on the first evaluation (so an
    Alerter made before `shipway serve` forks connects in each worker). `profile` is the drift
    reference (artifacts/profile.json), needed only by `drift.*` metrics; `drift_options` go
    to the drift comparison as they are.
    """

    def __init__(
        self,
        rules: AlertRules,
        service: str,
        store: Store | str | StoreProvider,
        *,
        base_dir: Path | None = None,
        dashboard_url: str = "",
        profile: Path | None = None,
        drift_options: Mapping[str, Any] | None = None,
        export: Path | None = None,
        retries: int = 3,
        timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.service = service
        self._store = store if isinstance(store, Store) else None
        self._store_url = store if isinstance(store, str) else None
        # The process's one handle (`shipway serve` gives the project's): its outage policy, never closed here.
        self._stores = store if isinstance(store, StoreProvider) else None
        self._owns_store = self._store is None and self._stores is None
        self.base_dir = base_dir
        self.dashboard_url = dashboard_url
        self.profile = profile
        self._profile: ProfileCache | None = None  # made on the first drift rule
        self.drift_options = dict(drift_options or {})
        self.export = export
        self.retries = retries
        self.timeout_s = timeout_s
        self.sleep = sleep
        self.clock = clock
        self._errors: dict[str, str] = {}  # rule -> the error last logged, so a lasting one is logged once

    @property
    def store(self) -> Store:
        if self._stores is not None:
            return self._stores.get()
        if self._store is None:
            assert self._store_url is not None
            self._store = open_store(self._store_url, self.base_dir)
        return self._store

    def close(self) -> None:
        """Close the store if this Alerter opened it."""
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

    def __call__(self) -> None:
        """Evaluate every rule and log what changed: the job `shipway serve` runs in each worker."""
        for e in self.evaluate():
            if e.changed:
                logger.warning("alert %s: %s", e.status, e.line(), extra={"alert": e.rule.name, "detail": e.to_dict()})
            elif e.state == "error" and self._errors.get(e.rule.name) != e.reason:
                logger.error("alert %r could not be evaluated: %s", e.rule.name, e.reason, extra={"alert": e.rule.name})
            if e.state == "error":
                self._errors[e.rule.name] = e.reason
            else:
                self._errors.pop(e.rule.name, None)
            for d in e.deliveries:
                if not d.ok:
                    logger.error(
                        "alert %r not delivered to %s: %s", e.rule.name, d.url, d.error, extra={"delivery": d.to_dict()}
                    )

    def evaluate(self, now: float | None = None) -> list[Evaluation]:
        """Evaluate every rule over the window ending at `now`; send a message for each change.

        Raises StoreError (StoreUnavailable included) when the store cannot be read; a rule
        whose metric cannot be computed (a drift rule without a profile...) is an "error"
        evaluation and the others go on.
        """
        until = self.clock() if now is None else now
        store = self.store
        totals: dict[float, dict[str, Any]] = {}
        drift: dict[float, Any] = {}
        out: list[Evaluation] = []
        for rule in self.rules.rules:
            since = until - rule.window_s
            e = Evaluation(rule, self.service, "no_data", None, since, until)
            try:
                if rule.window_s not in totals:
                    totals[rule.window_s] = self._totals(store, since, until, rule.window_s)
                self._judge(e, totals[rule.window_s], drift)
            except StoreError as err:
                if isinstance(err, StoreUnavailable) and self._stores is not None:
                    self._stores.failed(err)  # logged once; the next round reconnects
                raise  # nothing can be evaluated: the caller retries the whole round
            except ShipwayError as err:
                e.state, e.reason = "error", str(err)
            except Exception as err:  # a bug in one metric must not silence the other rules
                logger.exception("alert %r: computing %s failed", rule.name, rule.metric.name)
                e.state, e.reason = "error", f"{type(err).__name__}: {err}"
            if e.state in ("firing", "ok"):
                detail = {k: v for k, v in e.to_dict().items() if k not in ("deliveries", "versions", "status")}
                e.changed = store.alert_transition(self.service, rule.name, e.state == "firing", until, detail)
                if e.changed:
                    self._notify(store, e)
            out.append(e)
        return out

    # -- computing -----------------------------------------------------------------

    def _totals(self, store: Store, since: float, until: float, window_s: float) -> dict[str, Any]:
        from shipway.monitoring.metrics.online import online_metrics

        # One bucket the size of the window: only the totals are read.
        step = max(60, int(window_s) // 60 * 60)  # the store's buckets are whole minutes
        metrics = online_metrics(store, self.service, since=since, until=until, step_s=step)
        return dict(metrics.to_dict()["totals"])

    def _judge(self, e: Evaluation, totals: Mapping[str, Any], drift: dict[float, Any]) -> None:
        rule = e.rule
        e.requests = int(totals.get("requests") or 0)
        e.labelled = int(totals.get("labelled") or 0)
        if e.requests < rule.min_requests:
            e.reason = f"{e.requests} requests in the window, fewer than min_requests {rule.min_requests}"
            return
        if rule.metric.is_drift:
            value, count = self._drift_value(e, drift), None
        else:
            value, count = metric_value(rule.metric, totals)
        sample = count if count is not None else e.labelled
        if sample < rule.min_labelled:
            what = f"{rule.metric.path[1]!r} outcomes" if count is not None else "labelled predictions"
            e.reason = f"{sample} {what} in the window, fewer than min_labelled {rule.min_labelled}"
            return
        if value is None:
            if not e.reason:
                e.reason = _why_no_value(rule.metric)
            return
        e.value = value
        e.state = "firing" if rule.breached(value) else "ok"

    def _drift_value(self, e: Evaluation, cache: dict[float, Any]) -> float | None:
        """The drift metric's value from the drift report of this window (one report per window)."""
        from shipway.monitoring.alerts._drift_values import ProfileCache, drift_report, drift_value

        if self._profile is None:
            self._profile = ProfileCache(self.profile)
        key = e.rule.window_s
        if key not in cache:
            cache[key] = drift_report(
                self.store, self.service, self._profile, e.since, e.until, self.drift_options, self.export
            )
        value, reason = drift_value(cache[key], e.rule.metric)
        e.reason = reason
        return value

    # -- sending -------------------------------------------------------------------

    def _notify(self, store: Store, e: Evaluation) -> None:
        from shipway.monitoring.alerts._messages import send

        try:
            e.versions = self._versions(store, e.since, e.until)
            if e.state == "ok":
                e.firing_since = _firing_since(store, self.service, e.rule.name, e.until)
        except ShipwayError as err:  # the message goes out without them
            logger.warning("could not read the versions for an alert message: %s", err)
        channels = [self.rules.channels[name] for name in e.rule.channels if name in self.rules.channels]
        e.deliveries = send(
            e, channels, self.dashboard_url, retries=self.retries, timeout_s=self.timeout_s, sleep=self.sleep
        )

    def _versions(self, store: Store, since: float, until: float) -> dict[str, list[str]]:
        """The model and rules versions that served in the window, most used first."""
        from shipway.monitoring.metrics.online import online_metrics

        out: dict[str, list[str]] = {}
        step = max(60, int(until - since) // 60 * 60)
        for by in ("model_version", "rules_version"):
            series = online_metrics(store, self.service, since=since, until=until, step_s=step, by=by).to_dict()[
                "series"
            ]
            used = {
                str(s["group"].get(by)): sum(int(p.get("requests") or 0) for p in s["points"])
                for s in series
                if s["group"].get(by)
            }
            out[by] = sorted(used, key=lambda v: -used[v])
        return out


def _firing_since(store: Store, service: str, key: str, before: float) -> float | None:
    """When the alert last started firing, from the store's alert events."""
    events: Sequence[Any] = store.alert_events(service, limit=100)
    starts = [ev.ts for ev in events if ev.key == key and ev.firing and ev.ts <= before]
    return max(starts) if starts else None


def _why_no_value(metric: Metric) -> str:
    family = metric.path[0]
    if metric.sample == "labelled" or family == "coverage":
        return "no feedback labels have arrived for predictions in the window yet"
    if family == "outcomes":
        return f"no {metric.path[1]!r} outcomes have arrived for predictions in the window yet"
    if family == "per_class":
        return f"the class {metric.path[1]!r} has no labelled predictions in the window"
    if family in ("routing", "rules_fired", "review_rate"):
        return "no predictions in the window went through rules"
    return "the metric has no value for this window"
