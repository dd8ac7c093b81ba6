"""Worst slices: a planted bad slice comes out worst; the interval and the ranking behave."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cleanlab")

import numpy as np
import pandas as pd

from shipway.inspection import inspect_labels
from shipway.inspection.labelled_data import read_dataset
from shipway.inspection.slices import class_metrics, wilson, worst_slices

REGIONS = ["north", "south", "east", "west", "centre"]


def tabular(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Three classes set by two numbers, except in region 'east', where the labels are noise."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, 10, rows)
    x2 = rng.uniform(0, 10, rows)
    region = rng.choice(REGIONS, rows)
    label = np.where(x1 + x2 < 8, "low", np.where(x1 + x2 < 12, "mid", "high"))
    east = region == "east"
    label[east] = rng.choice(["low", "mid", "high"], int(east.sum()))
    return pd.DataFrame({"x1": x1.round(3), "x2": x2.round(3), "region": region, "label": label})


def test_wilson_matches_the_textbook_interval() -> None:
    # Wilson's interval for 0 of 10 reaches 0.2775 and for 5 of 10 spans 0.2366-0.7634 (z = 1.96).
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)


@pytest.mark.parametrize(("errors", "n"), [(0, 1), (1, 1), (3, 20), (50, 100), (999, 1000)])
def test_wilson_holds_the_rate_and_stays_in_range(errors: int, n: int) -> None:
    low, high = wilson(errors, n)
    assert 0 <= low <= errors / n <= high <= 1
    # Symmetric in errors and successes, and narrower with more rows.
    assert wilson(n - errors, n) == pytest.approx((1 - high, 1 - low))
    low10, high10 = wilson(errors * 10, n * 10)
    assert high10 - low10 < high - low


def test_the_planted_bad_region_comes_out_worst(tmp_path: Path) -> None:
    path = tmp_path / "tabular.csv"
    tabular().to_csv(path, index=False)
    report = inspect_labels(path, min_support=20)
    assert report.numeric == ["x1", "x2"] and report.categorical == ["region"]
    assert "gradient boosting" in report.model
    worst = report.slices[0]
    assert worst.description == "region = east", [s.description for s in report.slices[:5]]
    # Noise among three classes: the model is wrong about two times in three there.
    assert worst.error_rate > 0.5 > report.error_rate
    assert worst.interval[0] > report.error_rate
    # The other regions are learnt: none is among the slices worse than the overall rate.
    others = [s for s in report.slices if s.column == "region" and s.description != "region = east"]
    assert all(s.error_rate < worst.error_rate / 2 for s in others)
    # Most label issues are in the noisy region.
    frame = pd.read_csv(path)
    in_east = sum(frame.loc[i.row, "region"] == "east" for i in report.issues)
    assert in_east / len(report.issues) > 0.6


def test_slices_under_the_minimum_support_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "tabular.csv"
    tabular().to_csv(path, index=False)
    report = inspect_labels(path, min_support=300, top=100)
    assert report.slices
    assert all(s.rows >= 300 for s in report.slices)
    intervals = [s.interval[0] for s in report.slices]
    assert intervals == sorted(intervals, reverse=True)


def test_a_slice_repeating_a_worse_one_is_not_listed_twice(tmp_path: Path) -> None:
    frame = tabular()
    frame["region_code"] = frame["region"].map({r: i for i, r in enumerate(REGIONS)})
    path = tmp_path / "tabular.csv"
    frame.to_csv(path, index=False)
    dataset = read_dataset(path)
    wrong = (frame["region"] == "east").to_numpy() & (np.arange(len(frame)) % 3 != 0)
    slices = worst_slices(dataset, wrong, min_support=20, top=10)
    east = [s.description for s in slices if s.description in ("region = east", "region_code = 2")]
    assert len(east) == 1, [s.description for s in slices]
    assert slices[0].description == east[0]


def test_text_slices_find_a_word_whose_rows_are_mislabelled(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    topics = {"card": "my card was blocked", "loan": "apply for a loan today", "fee": "why this fee charged"}
    rows = []
    for i in range(900):
        label = list(topics)[i % 3]
        filler = " ".join(rng.choice(["please", "now", "thanks", "hello", "urgent", "again"], 2))
        text = f"{topics[label]} {filler}"
        channel = rng.choice(["app", "web"])
        if i % 10 == 0:  # one row in ten mentions 'zorb' and is labelled at random
            text, label = f"zorb {text}", str(rng.choice(list(topics)))
        rows.append({"text": text, "channel": channel, "intent": label})
    path = tmp_path / "texts.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    report = inspect_labels(path, min_support=20)
    assert report.text == "text" and report.categorical == ["channel"]
    assert "one-hot" in report.model
    assert report.slices[0].description == 'text contains "zorb"'
    assert report.slices[0].rows == 90


def test_class_metrics_count_precision_and_recall() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 1])
    metrics = {m.name: m for m in class_metrics(y, pred, ["a", "b", "c"])}
    assert (metrics["a"].precision, metrics["a"].recall) == (1.0, pytest.approx(2 / 3))
    assert (metrics["b"].precision, metrics["b"].recall) == (pytest.approx(2 / 4), 1.0)
    assert (metrics["c"].support, metrics["c"].predicted, metrics["c"].recall) == (1, 0, 0.0)
    assert class_metrics(y, pred, ["a", "b", "c"])[0].name == "c"


def test_examples_show_the_informative_fields_first(tmp_path: Path) -> None:
    """Thirty numeric fields, the label decided by `z_signal` (last in the file and in the alphabet):
    the issues' examples start with it, so a terminal's cut keeps it."""
    rng = np.random.default_rng(3)
    rows = 600
    frame = pd.DataFrame({f"a_noise_{i:02d}": rng.normal(size=rows) for i in range(29)})
    frame["z_signal"] = rng.normal(size=rows)
    frame["label"] = np.where(frame["z_signal"] > 0, "high", "low")
    flipped = rng.choice(rows, 30, replace=False)
    frame.loc[flipped, "label"] = np.where(frame.loc[flipped, "label"] == "high", "low", "high")
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    dataset = read_dataset(path)
    assert dataset.informative_features()[0] == "z_signal"
    report = inspect_labels(path, folds=3)
    assert report.issues
    assert all(issue.example.startswith("z_signal=") for issue in report.issues)
    assert any("most first: z_signal" in note for note in report.notes)
