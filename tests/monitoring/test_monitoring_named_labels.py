"""A binary score whose true labels are names ("fraud", "ok"), and the output kind's metrics per
time bucket: both checked against scikit-learn on the same records, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random

import numpy as np
import orjson
import pytest
from sklearn import metrics as sk
from store_fixtures import make_record

from shipway.cli.metrics_view import metrics_tables
from shipway.errors import ConfigError, InputError
from shipway.monitoring.dashboard.plots import outcome_series
from shipway.monitoring.metrics.online import online_metrics
from shipway.store import open_store
from shipway.store.outcomes import OutputReader, parse_feedback, reader_of

pytest_plugins = ["store_fixtures"]

DAY = 86400.0
T0 = 1_700_006_400.0 - 0.4 * DAY  # not on a day boundary: whole days and partial ones are read
N = 600
SPACING = 3 * DAY / N


def _traffic(seed: int = 5) -> tuple[list[float], list[int]]:
    rng = random.Random(seed)
    labels = [int(rng.random() < 0.4) for _ in range(N)]
    return [min(1.0, max(0.0, rng.gauss(0.35 + 0.3 * y, 0.2))) for y in labels], labels


def _metrics(
    store_url: str,
    outputs: list[object],
    feedback: list[dict[str, object]],
    reader: OutputReader,
    step_s: int = int(DAY),
) -> dict:  # type: ignore[type-arg]
    records = [make_record(i, ts=T0 + i * SPACING, outputs=orjson.dumps(o)) for i, o in enumerate(outputs)]
    with open_store(store_url) as store:
        store.write_predictions(records)
        store.write_feedback(parse_feedback(feedback, reader), reader)
        found = online_metrics(store, "svc", since=T0, until=T0 + N * SPACING, step_s=step_s, describe=reader)
    return found.to_dict()


def test_named_labels_score_as_1_and_0(store_url: str) -> None:
    scores, labels = _traffic()
    reader = OutputReader(positive="fraud", negative="ok")
    feedback = [{"request_id": f"req-{i}", "label": "fraud" if y else "ok"} for i, y in enumerate(labels)]
    metrics = _metrics(store_url, [{"score": s} for s in scores], feedback, reader)
    totals, b = metrics["totals"], metrics["totals"]["binary"]
    y, p = np.array(labels), np.array(scores)
    binned = np.minimum(np.floor(p * 1000), 999) / 1000
    assert totals["kind"] == "binary" and b["count"] == N and b["positives"] == int(y.sum())
    assert math.isclose(b["roc_auc"], sk.roc_auc_score(y, binned))
    assert math.isclose(b["brier"], sk.brier_score_loss(y, p))
    assert math.isclose(b["accuracy"], sk.accuracy_score(y, p >= 0.5))
    assert math.isclose(b["recall"], sk.recall_score(y, p >= 0.5))
    assert (b["positive_label"], b["negative_label"]) == ("fraud", "ok")
    assert set(totals["per_class"]) == {"fraud", "ok"}
    assert totals["per_class"]["fraud"]["support"] == int(y.sum())
    assert math.isclose(totals["accuracy"], sk.accuracy_score(y, p >= 0.5))
    assert "precision / recall of fraud" in metrics_tables(metrics)


def test_a_named_label_classifier_scores_the_positive_label(store_url: str) -> None:
    # {"label": "ok", "probability": 0.8} says 0.2 for fraud: with kind = "binary" the metrics read that.
    scores, labels = _traffic(9)
    reader = OutputReader(kind="binary", positive="fraud", negative="ok")
    outputs = [
        {"label": "fraud", "probability": s} if s >= 0.5 else {"label": "ok", "probability": 1 - s} for s in scores
    ]
    feedback = [{"request_id": f"req-{i}", "label": "fraud" if y else "ok"} for i, y in enumerate(labels)]
    b = _metrics(store_url, outputs, feedback, reader)["totals"]["binary"]
    y, p = np.array(labels), np.array(scores)
    assert math.isclose(b["brier"], sk.brier_score_loss(y, p))
    assert math.isclose(b["log_loss"], sk.log_loss(y, p))
    assert abs(b["roc_auc"] - sk.roc_auc_score(y, p)) <= b["auc_bound"] + 1e-12


def test_a_label_that_is_neither_is_refused_with_both_names() -> None:
    reader = OutputReader(positive="fraud", negative="ok")
    with pytest.raises(InputError) as caught:
        parse_feedback([{"request_id": "a", "label": "ok"}, {"request_id": "b", "label": "Fraud"}], reader)
    message = str(caught.value)
    assert "item 1" in message and "'Fraud' is neither monitoring.positive_label 'fraud'" in message
    assert "monitoring.negative_label 'ok'" in message
    assert (
        len(parse_feedback([{"request_id": "a", "label": 1}, {"request_id": "b", "name": "x", "value": "y"}], reader))
        == 2
    )


@pytest.mark.parametrize("pair", [("fraud", ""), ("", "ok"), ("fraud", "fraud")])
def test_half_a_pair_of_named_labels_is_a_config_error(pair: tuple[str, str]) -> None:
    settings = {
        "monitoring.label_field": "",
        "monitoring.score_field": "",
        "monitoring.ranking_field": "",
        "monitoring.kind": "auto",
        "monitoring.threshold": 0.5,
        "monitoring.positive_label": pair[0],
        "monitoring.negative_label": pair[1],
    }
    with pytest.raises(ConfigError, match=r"need both monitoring\.positive_label and monitoring\.negative_label"):
        reader_of(settings)


@pytest.mark.parametrize("step", [int(DAY), 6 * 3600])
def test_binary_metrics_per_bucket_match_scikit_learn(store_url: str, step: int) -> None:
    scores, labels = _traffic(7)
    feedback = [{"request_id": f"req-{i}", "label": y} for i, y in enumerate(labels)]
    metrics = _metrics(store_url, [{"score": s} for s in scores], feedback, OutputReader(), step)
    buckets = metrics["kind_series"]
    # Days: three and a bit, the window cut at both ends (rollups and edges); 6 hours: feedback rows.
    assert len(buckets) == (4 if step == DAY else 13)
    times = T0 + np.arange(N) * SPACING
    y, p = np.array(labels), np.array(scores)
    for bucket in buckets:
        inside = (times >= max(bucket["t"], T0)) & (times < bucket["t"] + step)
        assert bucket["count"] == int(inside.sum())
        # Per bucket the scores are binned 1/100 wide: exact for them, within the bound of the raw ones.
        binned = np.minimum(np.floor(p[inside] * 100), 99) / 100
        assert math.isclose(bucket["roc_auc"], sk.roc_auc_score(y[inside], binned))
        assert abs(bucket["roc_auc"] - sk.roc_auc_score(y[inside], p[inside])) <= bucket["auc_bound"] + 1e-12
        assert math.isclose(bucket["brier"], sk.brier_score_loss(y[inside], p[inside]))
        assert math.isclose(bucket["accuracy"], sk.accuracy_score(y[inside], p[inside] >= 0.5))
    assert sum(b["count"] for b in buckets) == N
    figure = outcome_series(metrics)
    assert [trace["name"] for trace in figure["data"]] == ["ROC AUC", "PR AUC", "Brier score"]
    assert figure["data"][0]["y"] == [b["roc_auc"] for b in buckets]
    table = metrics_tables(metrics)
    assert "bucket (UTC)" in table and "ROC AUC" in table


def test_regression_metrics_per_bucket(store_url: str) -> None:
    rng = random.Random(11)
    actual = [rng.uniform(0, 50) for _ in range(N)]
    predicted = [a + rng.gauss(0, 3) for a in actual]
    feedback = [{"request_id": f"req-{i}", "label": a} for i, a in enumerate(actual)]
    metrics = _metrics(store_url, [{"score": s} for s in predicted], feedback, OutputReader())
    times = T0 + np.arange(N) * SPACING
    for bucket in metrics["kind_series"]:
        inside = (times >= max(bucket["t"], T0)) & (times < bucket["t"] + DAY)
        a, s = np.array(actual)[inside], np.array(predicted)[inside]
        assert math.isclose(bucket["mae"], sk.mean_absolute_error(a, s))
        assert math.isclose(bucket["rmse"], math.sqrt(sk.mean_squared_error(a, s)))
    assert metrics["totals"]["kind"] == "regression" and len(metrics["kind_series"]) == 4


def test_ranking_metrics_per_bucket(store_url: str) -> None:
    items = ["a", "b", "c", "d"]
    outputs, feedback, ranks = [], [], []
    for i in range(N):
        ranked = items[i % 4 :] + items[: i % 4]
        outputs.append({"items": [{"item": x} for x in ranked]})
        feedback.append({"request_id": f"req-{i}", "label": "b"})
        ranks.append(ranked.index("b") + 1)
    metrics = _metrics(store_url, outputs, feedback, OutputReader())
    times = T0 + np.arange(N) * SPACING
    assert metrics["totals"]["kind"] == "ranking"
    for bucket in metrics["kind_series"]:
        inside = (times >= max(bucket["t"], T0)) & (times < bucket["t"] + DAY)
        r = np.array(ranks)[inside]
        assert bucket["count"] == int(inside.sum())
        assert math.isclose(bucket["mrr"], float(np.mean(1 / r)))
        assert math.isclose(bucket["hit_rate"]["1"], float(np.mean(r == 1)))
