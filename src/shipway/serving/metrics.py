"""Prometheus metrics of one service, across all its worker processes.

With several workers, `shipway serve` sets PROMETHEUS_MULTIPROC_DIR before
anything imports prometheus_client, and /metrics aggregates every worker's
values. In-process (tests, one worker) each App has its own registry.

The request counts, latencies and batch figures are tallied in plain Python on the event
loop and added to the shared counters once a second (`flush`, which /metrics also runs
first): in multiprocess mode each counter or histogram update takes a lock and writes a
memory-mapped file, about 12 us a request in all against about 1 us for the tally
(docs/benchmarks.md, issue 15). A Histogram takes observations one at a time, so the
histograms are published through counters of their own and shown as histograms by a
collector (`_TallyHistogram`), with prometheus_client's public API only.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

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
        self.latency = _TallyHistogram(
            "shipway_request_latency_seconds",
            "Time from request received to response sent.",
            ["service", "endpoint"],
            LATENCY_BUCKETS,
            reg,
        )
        self.candidate_items = Counter(
            "shipway_candidate_predictions",
            "Items the model candidate predicted, by its version, mode (shadow or canary) and outcome: "
            "answered, failed, or shed (shadow work dropped because its queue was full).",
            ["service", "version", "mode", "outcome"],
            registry=reg,
        )
        self.batch_size = _TallyHistogram(
            "shipway_batch_size", "Items per predict batch.", ["service"], BATCH_BUCKETS, reg
        )
        self.queue_wait = _TallyHistogram(
            "shipway_queue_wait_seconds",
            "Time an item waited in the batching queue.",
            ["service"],
            LATENCY_BUCKETS,
            reg,
        )
        self.batch_latency = _TallyHistogram(
            "shipway_batch_latency_seconds",
            "Time to run one batch through the pipeline.",
            ["service"],
            LATENCY_BUCKETS,
            reg,
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
        self._errors: dict[str, Any] = {}
        self.in_flight_child = self.in_flight.labels(service)
        # Tallies of the event loop's updates, published by flush(): requests by (endpoint,
        # status), and per histogram its observations per bucket and their sum.
        self._counted: dict[tuple[str, int], int] = {}
        self._tallies = {e: self.latency.labels(service, e) for e in ("predict", "batch", "explain")}
        self._batch_size = self.batch_size.labels(service)
        self._queue_wait = self.queue_wait.labels(service)
        self._batch_latency = self.batch_latency.labels(service)
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
        if self.multiprocess:  # every worker's values, from the shared files
            registry = CollectorRegistry()
            histograms = (self.latency, self.batch_size, self.queue_wait, self.batch_latency)
            registry.register(_Shared(MultiProcessCollector(None), histograms))
            return generate_latest(registry)
        return generate_latest(self.registry)


class _TallyHistogram:
    """A histogram published from tallies: a collector showing, as one Prometheus histogram, a
    counter of each bucket's observations and a gauge of their sum.

    Those two are not registered anywhere: in multiprocess mode their values go to the shared
    files, which `_Shared` reads back as this histogram. Either way the buckets, count, sum and
    created time are the ones a Histogram observing each value publishes
    (tests/serving/test_metrics.py)."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], bounds: Sequence[float], registry: Any
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.bounds = tuple(bounds)
        self.le = [*map(floatToGoString, self.bounds), "+Inf"]
        self.counts = Counter(f"{name}_tally_bucket", documentation, [*labelnames, "le"], registry=None)
        # A gauge: a sum may go down (a negative observation), which a counter refuses. "sum"
        # adds every worker's, as a histogram's sum is added, including workers gone.
        self.sums = Gauge(f"{name}_tally_sum", documentation, labelnames, registry=None, multiprocess_mode="sum")
        registry.register(self)

    def labels(self, *values: str) -> _Tally:
        """The tally of one series; its buckets and sum are published from the start, at zero."""
        return _Tally([self.counts.labels(*values, le) for le in self.le], self.sums.labels(*values), self.bounds)

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[Metric]:
        return [self.family([*_samples(self.counts.collect()), *_samples(self.sums.collect())])]

    def family(self, samples: Iterable[Sample]) -> HistogramMetricFamily:
        """The histogram of the samples of its bucket counter and sum gauge (one process's, or
        every worker's added)."""
        index = {le: i for i, le in enumerate(self.le)}
        series: dict[tuple[str, ...], tuple[list[float], list[float]]] = {}  # -> (bucket counts, [sum, created])
        for sample in samples:
            key = tuple(sample.labels[n] for n in self.labelnames)
            counts, more = series.setdefault(key, ([0.0] * len(self.le), [0.0]))
            if sample.name.endswith("_sum"):
                more[0] = sample.value
            elif sample.name.endswith("_total"):
                counts[index[sample.labels["le"]]] = sample.value
            elif sample.name.endswith("_created") and len(more) == 1:  # the series' first bucket's
                more.append(sample.value)
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, (counts, more) in series.items():
            family.add_metric(key, list(zip(self.le, accumulate(counts), strict=True)), more[0])
            if len(more) > 1:  # the created series, where prometheus_client publishes them
                family.add_sample(f"{self.name}_created", dict(zip(self.labelnames, key, strict=True)), more[1])
        return family


class _Shared:
    """The multiprocess collector's families, with each `_TallyHistogram`'s counter and gauge
    shown as the histogram."""

    def __init__(self, collector: MultiProcessCollector, histograms: Iterable[_TallyHistogram]) -> None:
        self.collector = collector
        self.histograms = list(histograms)

    def collect(self) -> Iterator[Metric]:
        parts = {f"{h.name}_tally_{part}": h for h in self.histograms for part in ("bucket", "sum")}
        found: dict[str, list[Sample]] = {}
        for family in self.collector.collect():
            histogram = parts.get(family.name)
            if histogram is None:
                yield family
            else:
                found.setdefault(histogram.name, []).extend(family.samples)
        for histogram in self.histograms:
            if histogram.name in found:
                yield histogram.family(found[histogram.name])


def _samples(families: Iterable[Metric]) -> list[Sample]:
    return [sample for family in families for sample in family.samples]


class _Tally:
    """A histogram series' observations since the last publish: counts per bucket and their sum,
    added by `publish` to the series' bucket counters and sum gauge (`_TallyHistogram`)."""

    __slots__ = ("_bounds", "_buckets", "_counts", "_sum", "_total")

    def __init__(self, buckets: list[Any], total: Any, bounds: tuple[float, ...]) -> None:
        self._buckets = buckets  # counter children, one a bucket, +Inf last
        self._total = total  # the sum gauge's child
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
        self._total.inc(total)
        for child, n in zip(self._buckets, counts, strict=True):
            if n:
                child.inc(n)
