"""Online metrics of score and ranked outputs, checked against scikit-learn on the same records.

The windows span whole days and partial ones, so both the daily rollups and the feedback
rows at the edges are read.
"""

from __future__ import annotations

import math
import random

import numpy as np
import orjson
import pytest
from sklearn import metrics as sk
from store_fixtures import make_record

from shipway.monitoring.metrics.online import online_metrics
from shipway.store import open_store
from shipway.store.outcomes import describe_fields, parse_feedback

pytest_plugins = ["store_fixtures"]

DAY = 86400.0
T0 = 1_700_006_400.0 - 0.4 * DAY  # not on a day boundary
N = 700
SPACING = 3 * DAY / N  # three days and a bit


def _write(store_url: str, outputs: list[object], feedback: list[dict[str, object]], **reader: object) -> dict:  # type: ignore[type-arg]
    records = [make_record(i, ts=T0 + i * SPACING, outputs=orjson.dumps(o)) for i, o in enumerate(outputs)]
    describe = describe_fields(**reader)  # type: ignore[arg-type]
    with open_store(store_url) as store:
        store.write_predictions(records)
        store.write_feedback(parse_feedback(feedback), describe)
        metrics = online_metrics(store, "svc", since=T0 - 60, until=T0 + N * SPACING, step_s=3600, describe=describe)
    return metrics.totals


def _binary_traffic(seed: int = 3) -> tuple[list[float], list[int]]:
    rng = random.Random(seed)
    labels = [int(rng.random() < 0.4) for _ in range(N)]
    scores = [min(1.0, max(0.0, rng.gauss(0.35 + 0.3 * y, 0.2))) for y in labels]
    return scores, labels


def test_a_score_output_with_0_1_labels_gets_binary_metrics(store_url: str) -> None:
    scores, labels = _binary_traffic()
    feedback = [{"request_id": f"req-{i}", "label": y} for i, y in enumerate(labels) if i % 7]
    totals = _write(store_url, [{"score": s} for s in scores], feedback)
    kept = [i for i in range(N) if i % 7]
    y = np.array([labels[i] for i in kept])
    p = np.array([scores[i] for i in kept])
    binned = np.minimum(np.floor(p * 1000), 999) / 1000
    b = totals["binary"]
    assert totals["kind"] == "binary"
    assert b["count"] == len(kept) and b["positives"] == int(y.sum())
    # Exact for the scores rounded down to their bin, and within the stated bound of the exact ones.
    assert math.isclose(b["roc_auc"], sk.roc_auc_score(y, binned))
    assert abs(b["roc_auc"] - sk.roc_auc_score(y, p)) <= b["auc_bound"] + 1e-12
    assert math.isclose(b["pr_auc"], sk.average_precision_score(y, binned))
    assert math.isclose(b["brier"], sk.brier_score_loss(y, p))
    assert math.isclose(b["log_loss"], sk.log_loss(y, p))
    assert math.isclose(b["accuracy"], sk.accuracy_score(y, p >= 0.5))
    assert math.isclose(b["precision"], sk.precision_score(y, p >= 0.5))
    assert math.isclose(b["recall"], sk.recall_score(y, p >= 0.5))
    # The label view no longer says "no feedback": accuracy at the threshold, both classes.
    assert totals["accuracy"] == b["accuracy"]
    assert math.isclose(totals["per_class"]["1"]["recall"], sk.recall_score(y, p >= 0.5))
    assert math.isclose(totals["per_class"]["0"]["precision"], sk.precision_score(1 - y, p < 0.5))
    assert sum(c["count"] for c in totals["calibration"]["bins"]) == len(kept)
    first = totals["calibration"]["bins"][0]
    low = p < 0.1
    assert math.isclose(first["confidence"], p[low].mean()) and math.isclose(first["accuracy"], y[low].mean())


def test_booleans_count_as_binary_outcomes_and_a_newer_value_replaces_the_older(store_url: str) -> None:
    scores, labels = _binary_traffic(seed=5)
    wrong = [{"request_id": f"req-{i}", "label": 1 - y} for i, y in enumerate(labels)]
    right = [{"request_id": f"req-{i}", "name": "label", "value": bool(y)} for i, y in enumerate(labels)]
    records = [
        make_record(i, ts=T0 + i * SPACING, outputs=orjson.dumps({"probability": s})) for i, s in enumerate(scores)
    ]
    describe = describe_fields()
    with open_store(store_url) as store:
        store.write_predictions(records)
        store.write_feedback(parse_feedback(wrong), describe)
        store.write_feedback(parse_feedback(right), describe)
        totals = online_metrics(store, "svc", since=T0, until=T0 + N * SPACING, describe=describe).totals
    assert totals["binary"]["count"] == N
    assert math.isclose(totals["binary"]["brier"], sk.brier_score_loss(labels, scores))


def test_a_regressor_fit_to_0_1_targets_is_binary_though_its_scores_stray_outside_0_1(store_url: str) -> None:
    scores, labels = _binary_traffic(seed=8)
    stray = [1.2 * s - 0.1 for s in scores]  # as LightGBM's regressor on the breast cancer data
    feedback = [{"request_id": f"req-{i}", "label": y} for i, y in enumerate(labels)]
    totals = _write(store_url, [{"score": s} for s in stray], feedback)
    y, p = np.array(labels), np.array(stray)
    assert totals["kind"] == "binary"
    binned = np.clip(np.floor(p * 1000), 0, 999)
    assert math.isclose(totals["binary"]["roc_auc"], sk.roc_auc_score(y, binned))
    assert math.isclose(totals["binary"]["brier"], float(np.mean((p - y) ** 2)))
    assert math.isclose(totals["binary"]["log_loss"], sk.log_loss(y, np.clip(p, 0, 1)))


def test_a_score_output_with_numeric_outcomes_gets_regression_metrics(store_url: str) -> None:
    rng = random.Random(11)
    actual = [rng.lognormvariate(1.0, 0.8) for _ in range(N)]
    predicted = [a * rng.uniform(0.7, 1.2) + rng.gauss(0, 0.3) for a in actual]
    feedback = [{"request_id": f"req-{i}", "name": "label", "value": a} for i, a in enumerate(actual)]
    totals = _write(store_url, [{"score": s} for s in predicted], feedback)
    r = totals["regression"]
    assert totals["kind"] == "regression" and totals["binary"] is None
    assert r["count"] == N
    assert math.isclose(r["mae"], sk.mean_absolute_error(actual, predicted))
    assert math.isclose(r["rmse"], sk.root_mean_squared_error(actual, predicted))
    assert math.isclose(r["bias"], float(np.mean(np.array(predicted) - np.array(actual))))
    assert sum(b["count"] for b in r["residuals"]) == N
    for b in r["residuals"]:
        inside = [a - s for a, s in zip(actual, predicted, strict=True) if b["lo"] < a - s <= b["hi"]]
        assert len(inside) == b["count"] or b["lo"] <= 0 <= b["hi"]


def _ranked_traffic(seed: int = 9) -> tuple[list[dict[str, object]], list[str], list[list[float]], list[list[str]]]:
    rng = random.Random(seed)
    catalog = [f"article-{k}" for k in range(15)]
    outputs, truth, score_rows, item_rows = [], [], [], []
    for _ in range(N):
        items = rng.sample(catalog, 10)
        scores = sorted((rng.random() for _ in items), reverse=True)
        outputs.append({"items": [{"item": it, "score": s} for it, s in zip(items, scores, strict=True)]})
        truth.append(items[min(int(rng.expovariate(0.4)), 9)] if rng.random() < 0.8 else rng.choice(catalog))
        score_rows.append(scores)
        item_rows.append(items)
    return outputs, truth, score_rows, item_rows


@pytest.mark.parametrize("fields", [{}, {"label": "items.0.item", "ranking": "items"}])
def test_a_ranked_output_gets_hit_rate_mrr_and_ndcg(store_url: str, fields: dict[str, str]) -> None:
    outputs, truth, scores, items = _ranked_traffic()
    feedback: list[dict[str, object]] = [{"request_id": f"req-{i}", "label": t} for i, t in enumerate(truth)]
    clicks = {i: items[i][i % 4] for i in range(0, N, 3)}
    feedback += [{"request_id": f"req-{i}", "name": "clicked", "value": item} for i, item in clicks.items()]
    totals = _write(store_url, outputs, feedback, **fields)
    relevance = np.array([[1.0 if it == t else 0.0 for it in row] for row, t in zip(items, truth, strict=True)])
    ranks = [row.index(t) + 1 if t in row else 0 for row, t in zip(items, truth, strict=True)]
    assert totals["kind"] == "ranking"
    assert math.isclose(totals["accuracy"], sum(rank == 1 for rank in ranks) / N)
    assert math.isclose(totals["top_k"]["5"], sum(1 <= rank <= 5 for rank in ranks) / N)
    r = totals["ranking"]
    for k in (1, 3, 5, 10):
        assert math.isclose(r["hit_rate"][str(k)], sum(1 <= rank <= k for rank in ranks) / N)
        assert math.isclose(r["ndcg"][str(k)], sk.ndcg_score(relevance, np.array(scores), k=k))
    assert math.isclose(r["mrr"], sum(1 / rank for rank in ranks if rank) / N)
    assert math.isclose(r["listed"], sum(rank > 0 for rank in ranks) / N)
    clicked = r["outcomes"]["clicked"]
    assert clicked["count"] == len(clicks)
    assert math.isclose(clicked["mrr"], sum(1 / (i % 4 + 1) for i in clicks) / len(clicks))


def test_alert_rules_can_watch_the_metrics_of_each_kind() -> None:
    from shipway.monitoring.alerts.alert_rules import parse_metric
    from shipway.monitoring.alerts.alerter import metric_value

    totals = {"binary": {"roc_auc": 0.81}, "ranking": {"ndcg": {"5": 0.4}, "mrr": 0.3}, "regression": None}
    assert metric_value(parse_metric("binary.roc_auc"), totals) == (0.81, None)
    assert metric_value(parse_metric("ranking.ndcg.5"), totals) == (0.4, None)
    assert metric_value(parse_metric("ranking.mrr"), totals) == (0.3, None)
    assert metric_value(parse_metric("regression.mae"), totals) == (None, None)  # not a regression


def test_a_bare_score_output_is_a_score(store_url: str) -> None:
    scores, labels = _binary_traffic(seed=4)
    totals = _write(store_url, scores, [{"request_id": f"req-{i}", "label": y} for i, y in enumerate(labels)])
    assert totals["kind"] == "binary"
    assert math.isclose(totals["binary"]["brier"], sk.brier_score_loss(labels, scores))
