"""Prometheus metrics of one service, across all its worker processes.

With several workers, `shipway serve` sets PROMETHEUS_MULTIPROC_DIR before
anything imports prometheus_client, and /metrics aggregates every worker's
values. In-process (tests, one worker) each App has its own registry.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The service's counters and histograms, with cached label children for the hot path."""

    def __init__(self, service: str) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "shipway_requests", "HTTP requests by endpoint and status.", ["service", "endpoint", "status"], registry=reg
        )
        self.errors = Counter(
            "shipway_errors",
            "Failed requests by error type (overloaded, timeout, input_error...).",
            ["service", "type"],
            registry=reg,
        )
        self.latency = Histogram(
            "shipway_request_latency_seconds",
            "Time from request received to response sent.",
            ["service", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.candidate_items = Counter(
            "shipway_candidate_predictions",
            "Items the model candidate predicted, by its version, mode (shadow or canary) and outcome: "
            "answered, failed, or shed (shadow work dropped because its queue was full).",
            ["service", "version", "mode", "outcome"],
            registry=reg,
        )
        self.batch_size = Histogram(
            "shipway_batch_size", "Items per predict batch.", ["service"], buckets=BATCH_BUCKETS, registry=reg
        )
        self.queue_wait = Histogram(
            "shipway_queue_wait_seconds",
            "Time an item waited in the batching queue.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch_latency = Histogram(
            "shipway_batch_latency_seconds",
            "Time to run one batch through the pipeline.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge(
            "shipway_in_flight", "Requests being served now.", ["service"], registry=reg, multiprocess_mode="livesum"
        )
        self.log_records = Gauge(
            "shipway_prediction_log_records",
            "Prediction-log records by state (written, spooled, dropped...).",
            ["service", "state"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.store_up = Gauge(
            "shipway_store_up",
            "1 if the store took the last write, 0 while records spool to disk.",
            ["service"],
            registry=reg,
            multiprocess_mode="livemin",
        )
        self.rule_hits = Counter(
            "shipway_rule_hits",
            "Decisions in which a rule or table row fired, by rule and rules version.",
            ["service", "rule", "rules_version"],
            registry=reg,
        )
        self.decisions = Counter(
            "shipway_decisions",
            "Rules decisions by the queue they routed to (none: no queue set).",
            ["service", "queue"],
            registry=reg,
        )
        self.service = service
        self._hits: dict[tuple[str, str], Any] = {}
        self._pending: dict[tuple[str | None, str | None], int] = {}
        self._lock = threading.Lock()
        self._queues: dict[str | None, Any] = {}
        self._requests: dict[tuple[str, int], Any] = {}
        self._latency = {e: self.latency.labels(service, e) for e in ("predict", "batch", "explain")}
        self._errors: dict[str, Any] = {}
        self.in_flight_child = self.in_flight.labels(service)
        self._batch_size = self.batch_size.labels(service)
        self._queue_wait = self.queue_wait.labels(service)
        self._batch_latency = self.batch_latency.labels(service)

    def request(self, endpoint: str, status: int, seconds: float | None = None) -> None:
        child = self._requests.get((endpoint, status))
        if child is None:
            child = self._requests[(endpoint, status)] = self.requests.labels(self.service, endpoint, str(status))
        child.inc()
        if seconds is not None:
            hist = self._latency.get(endpoint)
            if hist is not None:
                hist.observe(seconds)

    def error(self, kind: str) -> None:
        child = self._errors.get(kind)
        if child is None:
            child = self._errors[kind] = self.errors.labels(self.service, kind)
        child.inc()

    def candidate(self, version: str, mode: str, outcome: str, n: int = 1) -> None:
        """Count `n` items of the candidate `version` in `mode` with `outcome`."""
        if n:
            self.candidate_items.labels(self.service, version, mode, outcome).inc(n)

    def batch(self, size: int, waits: list[float], seconds: float) -> None:
        self._batch_size.observe(size)
        self._batch_latency.observe(seconds)
        observe = self._queue_wait.observe
        for wait in waits:
            observe(wait)

    def decision(self, queue: str | None, fired: list[str], rules_version: str) -> None:
        """Count one rules decision. Called per item on the predict thread, so it only adds to a
        local tally; `flush()` moves the tally into the shared counters once a second (each
        shared-counter update takes a lock and writes a memory-mapped file)."""
        with self._lock:  # uncontended but for the flush: the tally must not be swapped mid-update
            pending = self._pending
            pending[(None, queue)] = pending.get((None, queue), 0) + 1
            for rule in fired:
                pending[(rule, rules_version)] = pending.get((rule, rules_version), 0) + 1

    def flush(self, in_flight: int) -> None:
        """Publish the tallies kept off the hot path (from the event loop, once a second)."""
        self.in_flight_child.set(in_flight)
        with self._lock:
            pending, self._pending = self._pending, {}
        for (rule, label), n in pending.items():
            if rule is None:
                child = self._queues.get(label)
                if child is None:
                    child = self._queues[label] = self.decisions.labels(self.service, label or "none")
            else:
                child = self._hits.get((rule, label or ""))
                if child is None:
                    child = self._hits[(rule, label or "")] = self.rule_hits.labels(self.service, rule, label or "")
            child.inc(n)

    def prediction_log(self, stats: dict[str, Any]) -> None:
        for state in (
            "written",
            "spooled",
            "replayed",
            "dropped",
            "pending",
            "held",
            "sampled_out",
            "rejected",
            "redacted_out",
            "redaction_failed",
        ):
            if state in stats:
                self.log_records.labels(self.service, state).set(stats[state])
        self.store_up.labels(self.service).set(1 if stats.get("store_up") else 0)

    def render(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
