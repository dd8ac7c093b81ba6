"""The comparison of a candidate with the live version, from a real prediction log on both backends:
agreement, per-class disagreements with examples, latency, error rate and online accuracy of each."""

from __future__ import annotations

import math
import time

import orjson
import pytest
from store_fixtures import make_record

from shipway.store import open_store
from shipway.store.outcomes import describe_fields, parse_feedback
from shipway.store.version_comparison import SHADOW_SUFFIX, compare_versions

pytest_plugins = ["store_fixtures"]

LIVE, CAND = "live-1", "cand-1"


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def test_shadow_pairs_give_agreement_disagreements_latency_errors_and_accuracy(store_url: str) -> None:
    t0 = time.time() - 600
    classes = ["card_lost", "refund", "top_up"]
    live_labels = {f"r{i}": classes[i % 3] for i in range(30)}
    # The candidate says "refund" where the live version says "top_up", and fails on two requests.
    cand_labels = {rid: ("refund" if label == "top_up" else label) for rid, label in live_labels.items()}
    failed = {"r4", "r7"}
    truth = {f"r{i}": classes[i % 3] for i in range(0, 30, 2)}  # labels came back for every other request
    records, failures = [], []
    for i, rid in enumerate(live_labels):
        text = orjson.dumps({"text": f"message {i}"})
        live_out = orjson.dumps({"intent": live_labels[rid], "probability": 0.9})
        records.append(
            make_record(
                i, request_id=rid, ts=t0 + i, model_version=LIVE, latency_ms=5.0 + i, outputs=live_out, inputs=text
            )
        )
        # As serving logs a shadow answer: the request id with SHADOW_SUFFIX, the candidate's version;
        # a failed one is only counted in the rollups.
        shadow = make_record(
            100 + i,
            request_id=rid + SHADOW_SUFFIX,
            ts=t0 + i + 0.5,
            model_version=CAND,
            latency_ms=20.0 + 2 * i,
            outputs=orjson.dumps({"intent": cand_labels[rid], "probability": 0.8}),
            inputs=text,
        )
        if rid in failed:
            shadow.status = 500
            failures.append(shadow)
        else:
            records.append(shadow)
    # Another service's traffic and a third version are not part of the comparison.
    records.append(make_record(999, request_id="other", ts=t0, service="elsewhere", model_version=CAND))
    records.append(make_record(998, request_id="old", ts=t0, model_version="older-0"))
    with open_store(store_url) as store:
        store.write_predictions(records)
        store.write_rollups(failures)
        feedback = parse_feedback([{"request_id": rid, "label": label, "ts": t0 + 100} for rid, label in truth.items()])
        store.write_feedback(feedback, describe_fields())
        found = compare_versions(store, "svc", CAND, since=t0 - 1, until=t0 + 60, live=LIVE, examples=2)
        guessed = compare_versions(store, "svc", CAND, since=t0 - 1, until=t0 + 60)

    answered = [rid for rid in live_labels if rid not in failed]
    agreed = [rid for rid in answered if live_labels[rid] == cand_labels[rid]]
    assert (found.paired, found.agreed) == (len(answered), len(agreed))
    assert found.agreement == len(agreed) / len(answered)
    assert found.live.requests == found.candidate.requests == len(live_labels)
    assert (found.live.errors, found.candidate.errors) == (0, len(failed))
    assert found.candidate.error_rate == len(failed) / len(live_labels)
    # From the rollups' histograms: within 5% of an observed latency (docs/alerts.md).
    assert found.live.latency_p99_ms == pytest.approx(_nearest_rank([5.0 + i for i in range(30)], 0.99), rel=0.05)
    assert found.candidate.latency_p50_ms == pytest.approx(
        _nearest_rank([20.0 + 2 * i for i in range(30)], 0.5), rel=0.05
    )

    (only,) = found.disagreements
    assert (only.live, only.candidate) == ("top_up", "refund")
    assert only.count == len(answered) - len(agreed)
    assert len(only.examples) == 2
    assert all(live_labels[e["request_id"]] == "top_up" for e in only.examples)
    assert only.examples[0]["inputs"]["text"].startswith("message")
    assert found.per_class["top_up"] == [sum(live_labels[r] == "top_up" for r in answered), 0]

    live_right = sum(live_labels[r] == label for r, label in truth.items())
    cand_labelled = [r for r in truth if r not in failed]
    cand_right = sum(cand_labels[r] == truth[r] for r in cand_labelled)
    assert (found.live.labelled, found.live.correct) == (len(truth), live_right)
    assert (found.candidate.labelled, found.candidate.correct) == (len(cand_labelled), cand_right)
    assert found.to_dict()["candidate"]["accuracy"] == cand_right / len(cand_labelled)
    assert guessed.live.version == LIVE  # the other version that answered most


def test_canary_answers_count_for_figures_not_agreement(store_url: str) -> None:
    t0 = time.time() - 300
    records = [make_record(i, ts=t0 + i, model_version=LIVE if i % 4 else CAND) for i in range(40)]
    with open_store(store_url) as store:
        store.write_predictions(records)
        found = compare_versions(store, "svc", CAND, since=t0, until=t0 + 100, live=LIVE)
    assert found.candidate.requests == sum(1 for r in records if r.model_version == CAND)
    assert found.live.requests == len(records) - found.candidate.requests
    assert found.paired == 0 and found.agreement is None and found.disagreements == []
