"""The service's Prometheus metrics: tallied on the event loop, published by flush()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from shipway.serving.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, Metrics


def _histogram(registry: CollectorRegistry, name: str, **labels: str) -> dict[tuple[str, str], float]:
    """(sample suffix, le) -> value of one histogram child's bucket, count and sum samples."""
    out: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_count", "_sum")) and labels.items() <= sample.labels.items():
                out[(sample.name.rsplit("_", 1)[1], sample.labels.get("le", ""))] = sample.value
    return out


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_published_tallies_equal_observing_each_value() -> None:
    metrics = Metrics("svc")
    reference = CollectorRegistry()
    latency = Histogram("ref_latency_seconds", "", buckets=LATENCY_BUCKETS, registry=reference)
    sizes = Histogram("ref_batch_size", "", buckets=BATCH_BUCKETS, registry=reference)
    # On a bucket's bound (le is inclusive), between bounds, past the last one, and zero.
    values = [0.0, 0.001, 0.0011, 0.0025, 0.7, 10.0, 12.5, 0.001, 3e-5]
    for v in values:
        metrics.request("predict", 200, v)
        latency.observe(v)
    for size in (1, 3, 64, 600):
        metrics.batch(size, [0.001] * size, 0.002)
        sizes.observe(size)
    metrics.flush(0)
    ours = _histogram(metrics.registry, "shipway_request_latency_seconds", endpoint="predict")
    assert ours and ours == _histogram(reference, "ref_latency_seconds")
    # Each series as a Histogram publishes it, with its created time (a histogram of our own, not
    # a Histogram: prometheus_client takes a Histogram's observations one at a time).
    family = next(f for f in metrics.registry.collect() if f.name == "shipway_request_latency_seconds")
    assert family.type == "histogram"
    assert {s.name for s in family.samples} == {f"{family.name}_{x}" for x in ("bucket", "count", "sum", "created")}
    assert {s.labels["endpoint"] for s in family.samples} == {"predict", "batch", "explain"}
    assert _histogram(metrics.registry, "shipway_batch_size") == _histogram(reference, "ref_batch_size")
    requests = _value(metrics.registry, "shipway_requests_total", service="svc", endpoint="predict", status="200")
    assert requests == len(values)
    waits = _value(metrics.registry, "shipway_queue_wait_seconds_count", service="svc")
    assert waits == 1 + 3 + 64 + 600


def test_tallies_are_published_once() -> None:
    metrics = Metrics("svc")
    metrics.request("batch", 503)
    metrics.flush(0)
    metrics.flush(0)  # nothing new: nothing added twice
    assert _value(metrics.registry, "shipway_requests_total", service="svc", endpoint="batch", status="503") == 1
    metrics.request("batch", 503)
    assert _value(metrics.registry, "shipway_requests_total", service="svc", endpoint="batch", status="503") == 1
    metrics.flush(0)
    assert _value(metrics.registry, "shipway_requests_total", service="svc", endpoint="batch", status="503") == 2


MULTIPROCESS = """
import os
from prometheus_client import Histogram
from shipway.serving.metrics import LATENCY_BUCKETS, Metrics

metrics = Metrics("svc")  # before the fork, as `shipway serve` builds it before its workers
reference = Histogram("ref_latency_seconds", "", buckets=LATENCY_BUCKETS, registry=None)
values = [0.0, 0.001, 0.0011, 0.0025, 0.7, 10.0, 12.5, 0.001, 3e-5, 0.3, 0.02]
child = os.fork()
for v in values[::2] if child == 0 else values[1::2]:
    metrics.request("predict", 200, v)
    reference.observe(v)
metrics.flush(0)
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
print(metrics.render().decode())
"""


def test_workers_tallies_add_up_as_observing_each_value_does(tmp_path: Path) -> None:
    # Multiprocess mode is chosen when prometheus_client is imported: a process of its own.
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    run = subprocess.run([sys.executable, "-c", MULTIPROCESS], env=env, capture_output=True, text=True, check=True)
    text = run.stdout
    assert "_tally" not in text and "# TYPE shipway_request_latency_seconds histogram" in text
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def series(name: str, **labels: str) -> dict[tuple[str, str], float]:
        return {
            (s.name.rsplit("_", 1)[1], s.labels.get("le", "")): s.value
            for s in families[name].samples
            if labels.items() <= s.labels.items()
        }

    ours = series("shipway_request_latency_seconds", endpoint="predict", service="svc")
    assert ours == series("ref_latency_seconds") and ours[("count", "")] == 11
    # The series nothing was observed in are published from the start, at zero.
    assert series("shipway_request_latency_seconds", endpoint="explain")[("count", "")] == 0
    assert series("shipway_batch_size", service="svc")[("bucket", "+Inf")] == 0
