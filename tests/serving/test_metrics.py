"""The service's Prometheus metrics: tallied on the event loop, published by flush()."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

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
