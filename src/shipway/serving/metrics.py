"""Prometheus metrics of one service, across all its worker processes.

With several workers, `shipway serve` sets PROMETHEUS_MULTIPROC_DIR before
anything imports prometheus_client, and /metrics aggregates every worker's
values. In-process (tests, one worker) each App has its own registry.

The request counts, latencies and batch figures are tallied in plain Python on the event
loop and added to the shared counters once a second (`flush`, which /metrics also runs
first): in multiprocess mode each counter or histogram update takes a lock and writes a
memory-mapped file, about 12 us a request in all against about 1 us for the tally
(docs/benchmarks.md, issue 15).
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
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
        # Tallies of the event loop's updates, published by flush(): requests by (endpoint,
        # status), and per histogram its observations per bucket and their sum.
        self._counted: dict[tuple[str, int], int] = {}
        self._tallies = {e: _Tally(h, LATENCY_BUCKETS) for e, h in self._latency.items()}
        self._batch_size = _Tally(self.batch_size.labels(service), BATCH_BUCKETS)
        self._queue_wait = _Tally(self.queue_wait.labels(service), LATENCY_BUCKETS)
        self._batch_latency = _Tally(self.batch_latency.labels(service), LATENCY_BUCKETS)
        self._histograms = [*self._tallies.values(), self._batch_size, self._queue_wait, self._batch_latency]

    def request(self, endpoint: str, status: int, seconds: float | None = None) -> None:
        """Count one answered request (on the event loop; published by `flush`)."""
        key = (endpoint, status)
        counted = self._counted
        counted[key] = counted.get(key, 0) + 1
        if seconds is not None:
            tally = self._tallies.get(endpoint)
            if tally is not None:
                tally.observe(seconds)

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
        """Count one batch run (on the event loop; published by `flush`)."""
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
        """Publish the tallies kept off the hot path (from the event loop, once a second,
        before /metrics answers, and at shutdown)."""
        self.in_flight_child.set(in_flight)
        counted, self._counted = self._counted, {}
        for (endpoint, status), n in counted.items():
            child = self._requests.get((endpoint, status))
            if child is None:
                child = self._requests[(endpoint, status)] = self.requests.labels(self.service, endpoint, str(status))
            child.inc(n)
        for tally in self._histograms:
            tally.publish()
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


class _Tally:
    """A histogram's observations since the last publish: counts per bucket and their sum.

    `publish` adds them to the histogram child through its bucket and sum values, the
    ones `observe` updates (prometheus_client's Histogram keeps them as `_buckets` and
    `_sum`; tests/serving/test_metrics.py pins that the result equals observing each)."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Any, bounds: tuple[float, ...]) -> None:
        self._child = child
        self._bounds = bounds  # the +Inf bucket is the last index, len(bounds)
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1  # bucket i holds amount <= bounds[i]
        self._sum += amount

    def publish(self) -> None:
        counts, total = self._counts, self._sum
        if not any(counts):
            return
        self._counts, self._sum = [0] * len(counts), 0.0
        child = self._child
        child._sum.inc(total)
        for i, n in enumerate(counts):
            if n:
                child._buckets[i].inc(n)
