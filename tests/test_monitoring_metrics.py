"""Online metrics from the store's rollups and joined feedback, checked against the records themselves."""

from __future__ import annotations

import math
import random

import orjson
import pytest
from store_fixtures import make_record

from shipway.errors import ConfigError
from shipway.monitoring.metrics.online import online_metrics, recent_predictions
from shipway.store import open_store
from shipway.store.outcomes import describe_fields, parse_feedback

pytest_plugins = ["store_fixtures"]

T0 = 1_700_006_400.0  # on an hour boundary
LABELS = ["card", "loan", "fees", "other"]
DESCRIBE = describe_fields()


def _traffic(seed: int = 7, n: int = 600, spacing: float = 10) -> tuple[list, list[dict[str, object]], list]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    records, feedback, failures = [], [], []
    for i in range(n):
        ranking = rng.sample(LABELS, 3)
        model = "m-1" if i < n // 2 else "m-2"
        outputs = {
            "intent": ranking[0],
            "probability": round(rng.uniform(0.3, 1.0), 3),
            "alternatives": [{"intent": x, "probability": 0.1} for x in ranking[1:]],
        }
        decision = {"queue": rng.choice(["urgent", "general"]), "review": rng.random() < 0.2, "fired": ["r1"]}
        records.append(
            make_record(
                i,
                ts=T0 + i * spacing,  # by default 600 records over 100 minutes
                model_version=model,
                latency_ms=rng.uniform(1, 50),
                outputs=orjson.dumps(outputs),
                decision=orjson.dumps(decision),
            )
        )
        if rng.random() < 0.7:
            actual = ranking[0] if rng.random() < 0.6 else rng.choice(LABELS)
            feedback.append({"request_id": f"req-{i}", "label": actual, "ts": T0 + i * spacing + 5})
        if i % 50 == 0:
            failures.append(
                make_record(10_000 + i, ts=T0 + i * spacing, model_version=model, status=500, latency_ms=3.0)
            )
    return records, feedback, failures


def test_metrics_match_what_the_records_say(store_url: str) -> None:
    records, feedback, failures = _traffic()
    with open_store(store_url) as store:
        store.write_predictions(records)
        store.write_rollups(failures)
        store.write_feedback(parse_feedback(feedback), DESCRIBE)
        metrics = online_metrics(store, "svc", since=T0, until=T0 + 6000, step_s=1800, by="model_version")
    totals = metrics.totals
    outputs = {r.request_id: orjson.loads(r.outputs) for r in records}
    truth = {f["request_id"]: f["label"] for f in feedback}
    hits = [outputs[rid]["intent"] == label for rid, label in truth.items()]
    top3 = [
        label in [outputs[rid]["intent"], *(a["intent"] for a in outputs[rid]["alternatives"])]
        for rid, label in truth.items()
    ]
    assert totals["requests"] == len(records) + len(failures)
    assert totals["errors"] == len(failures)
    assert totals["labelled"] == len(feedback)
    assert math.isclose(totals["coverage"], len(feedback) / len(records))
    assert math.isclose(totals["accuracy"], sum(hits) / len(hits))
    assert math.isclose(totals["top_k"]["3"], sum(top3) / len(top3))
    # The outputs list 3 labels: a label they do not list is no top-5 hit.
    assert math.isclose(totals["top_k"]["5"], sum(top3) / len(top3))
    decisions = [orjson.loads(r.decision) for r in records]
    assert math.isclose(totals["routing"]["urgent"], sum(d["queue"] == "urgent" for d in decisions) / len(records))
    assert math.isclose(totals["review_rate"], sum(d["review"] for d in decisions) / len(records))
    assert totals["rules_fired"] == {"r1": 1.0}
    for label in LABELS:
        predicted = [rid for rid in truth if outputs[rid]["intent"] == label]
        actual = [rid for rid in truth if truth[rid] == label]
        correct = [rid for rid in predicted if truth[rid] == label]
        row = totals["per_class"][label]
        assert row["support"] == len(actual)
        assert math.isclose(row["precision"], len(correct) / len(predicted))
        assert math.isclose(row["recall"], len(correct) / len(actual))
    # Expected calibration error over ten equal-width bins, computed here from the records.
    bins: dict[int, list[tuple[float, bool]]] = {}
    for rid, label in truth.items():
        p = outputs[rid]["probability"]
        bins.setdefault(min(int(p * 10), 9), []).append((p, outputs[rid]["intent"] == label))
    ece = sum(
        len(b) / len(truth) * abs(sum(c for _, c in b) / len(b) - sum(p for p, _ in b) / len(b)) for b in bins.values()
    )
    assert math.isclose(totals["calibration"]["ece"], ece)
    latencies = sorted(r.latency_ms for r in records) + [3.0] * len(failures)
    assert math.isclose(totals["latency_ms"]["mean"], sum(latencies) / len(latencies))
    p99 = sorted(latencies)[math.ceil(0.99 * len(latencies)) - 1]
    assert abs(totals["latency_ms"]["p99"] / p99 - 1) < 0.1
    # Per model version and per 30-minute bucket; the buckets add up to the totals.
    groups = {s["group"]["model_version"]: s["points"] for s in metrics.series}
    assert set(groups) == {"m-1", "m-2"}
    assert sum(p["requests"] for points in groups.values() for p in points) == totals["requests"]
    assert all(p["t"] % 1800 == 0 for points in groups.values() for p in points)
    m1 = [rid for rid in truth if int(rid.split("-")[1]) < len(records) // 2]
    m1_hits = sum(outputs[rid]["intent"] == truth[rid] for rid in m1)
    assert sum(p["labelled"] for p in groups["m-1"]) == len(m1)
    assert math.isclose(sum((p["accuracy"] or 0) * p["labelled"] for p in groups["m-1"]), m1_hits)


def test_recent_predictions_are_the_slowest_and_least_confident(store_url: str) -> None:
    records, _, _ = _traffic(n=100)
    with open_store(store_url) as store:
        store.write_predictions(records)
        slowest = recent_predictions(store, "svc", since=T0, limit=5, describe=DESCRIBE)
        uncertain = recent_predictions(store, "svc", since=T0, limit=5, order="uncertain", describe=DESCRIBE)
    assert [p["latency_ms"] for p in slowest] == sorted((r.latency_ms for r in records), reverse=True)[:5]
    confidences = sorted(orjson.loads(r.outputs)["probability"] for r in records)[:5]
    assert [p["confidence"] for p in uncertain] == confidences
    assert slowest[0]["inputs"]["text"].startswith("input ")


def test_an_empty_window_has_no_rates_rather_than_zeros(store_url: str) -> None:
    with open_store(store_url) as store:
        totals = online_metrics(store, "svc", since=T0, until=T0 + 60, step_s=60).totals
    assert totals["requests"] == 0 and totals["accuracy"] is None and totals["error_rate"] is None


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ConfigError, match="window is empty"):
        online_metrics(None, "svc", since=T0, until=T0)  # type: ignore[arg-type]


@pytest.mark.parametrize("spacing", [10, 600])  # 100 minutes; 4 days (whole days read from the daily rollup)
def test_rollups_agree_with_the_rows_after_duplicates_and_late_joins(store_url: str, spacing: float) -> None:
    records, feedback, _ = _traffic(seed=11, spacing=spacing)
    with open_store(store_url) as store:
        store.write_feedback(parse_feedback(feedback[:50]), DESCRIBE)  # before their predictions: pending
        store.write_predictions(records)
        store.write_feedback(parse_feedback(feedback[50:]), DESCRIBE)  # also joins the pending ones
        # Every label replaced by "card": the hourly sums must drop what they replace.
        relabelled = [{**f, "label": "card"} for f in feedback[::3]]
        store.write_feedback(parse_feedback(relabelled), DESCRIBE)
        # Edges inside hours (and days): rows are read there, rollups between.
        since, until = T0 + 1234, T0 + 5555 if spacing == 10 else T0 + 3.5 * 86400
        hourly = online_metrics(store, "svc", since=since, until=until, step_s=3600, describe=DESCRIBE).totals
        minutely = online_metrics(store, "svc", since=since, until=until, step_s=60).totals
    truth = {f["request_id"]: f["label"] for f in feedback}
    truth.update({f["request_id"]: "card" for f in relabelled})
    inside = [r for r in records if since <= r.ts < until and r.request_id in truth]
    hits = [orjson.loads(r.outputs)["intent"] == truth[r.request_id] for r in inside]
    for totals in (hourly, minutely):
        assert totals["labelled"] == len(inside)
        assert math.isclose(totals["accuracy"], sum(hits) / len(hits))
        for label in LABELS:
            predicted = [r for r in inside if orjson.loads(r.outputs)["intent"] == label]
            right = [r for r in predicted if truth[r.request_id] == label]
            assert math.isclose(totals["per_class"][label]["precision"], len(right) / len(predicted))
        assert totals["calibration"]["bins"] == hourly["calibration"]["bins"]
    assert hourly["top_k"] == minutely["top_k"]
    confidences = [orjson.loads(r.outputs)["probability"] for r in inside]
    assert sum(b["count"] for b in hourly["calibration"]["bins"]) == len(confidences)
    assert math.isclose(sum(b["confidence"] * b["count"] for b in hourly["calibration"]["bins"]), sum(confidences))
