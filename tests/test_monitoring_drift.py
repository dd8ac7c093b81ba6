"""Drift detection end to end: profiles, windows from the real prediction log, verdicts, thresholds."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from shipway.core.settings import load_settings
from shipway.errors import ConfigError, DriftError
from shipway.monitoring.drift._stats import dkw_epsilon
from shipway.monitoring.drift.comparison import compare
from shipway.monitoring.drift.profile import FILENAME, Profile
from shipway.monitoring.drift.thresholds import Thresholds
from shipway.monitoring.drift.window import Window, window_from_records, window_from_store
from shipway.store import PredictionRecord, open_store

WORDS = "card lost stolen where is my refund payment transfer account pending fee atm cash".split()


def items(n: int, seed: int, *, shift: float = 0.0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Service-like inputs and outputs; `shift` moves the amount, the country mix and the answers."""
    rng = np.random.default_rng(seed)
    countries = rng.choice(
        ["fr", "de", "uk", "es"], size=n, p=[0.4, 0.3, 0.2, 0.1] if not shift else [0.1, 0.2, 0.3, 0.4]
    )
    inputs = [
        {
            "amount": float(rng.lognormal(3 + shift, 1)),
            "country": str(c),
            "customer": {"age": int(rng.integers(18, 80)), "premium": bool(rng.random() < 0.2)},
            "note": " ".join(rng.choice(WORDS, size=int(rng.integers(5, 12)))),
            "tags": ["a", "b"],
        }
        for c in countries
    ]
    outputs = [
        {
            "label": str(rng.choice(["ok", "review"], p=[0.8, 0.2] if not shift else [0.5, 0.5])),
            "score": float(rng.beta(5, 2)),
        }
        for _ in range(n)
    ]
    return inputs, outputs


@pytest.fixture(scope="module")
def profile() -> Profile:
    inputs, outputs = items(3_000, seed=1)
    return Profile.build(inputs, outputs, kinds={"note": "text"})


def test_kinds_are_inferred_and_lists_skipped(profile: Profile) -> None:
    kinds = {f.name: f.kind for f in profile.features}
    assert kinds == {
        "amount": "numeric",
        "country": "categorical",
        "customer.age": "numeric",
        "customer.premium": "categorical",
        "note": "text",
        "output.label": "categorical",
        "output.score": "numeric",
    }
    assert "tags" in profile.skipped
    long_text = Profile.build([{"t": "a sentence long enough to be free text, not a code"}] * 5)
    assert long_text.features[0].kind == "text"
    many = Profile.build([{"t": f"name{i}"} for i in range(300)])
    assert many.features[0].kind == "text"  # short, but nearly all different
    few = Profile.build([{"t": f"name{i % 20}"} for i in range(300)])
    assert few.features[0].kind == "categorical"


def test_profile_keeps_a_bounded_sample_with_its_error_bound() -> None:
    values = np.random.default_rng(2).normal(size=5_000)
    big = Profile.build({"x": values}, sample_size=1_000).features[0].numeric
    assert big is not None and len(big.sample) == 1_000 and big.count == 5_000
    assert big.ks_error == pytest.approx(dkw_epsilon(1_000)) and big.wasserstein_error > 0
    assert big.std == pytest.approx(np.std(values)) and big.cut_counts.sum() == 5_000
    small = Profile.build({"x": values[:500]}, sample_size=1_000).features[0].numeric
    assert small is not None and small.exact and small.ks_error == 0 and small.wasserstein_error == 0


def test_same_distribution_shows_no_drift(profile: Profile) -> None:
    inputs, outputs = items(2_000, seed=2)
    report = compare(profile, Window.from_items(inputs, outputs, profile), embed="hashing")
    drifted = [(r.feature, r.method, r.value) for r in report.results if r.drifted]
    assert not drifted
    assert all(r.drifted is False for r in report.results)
    assert not report.summary()["dataset_drift"]


def test_shifted_data_drifts_where_it_was_shifted(profile: Profile) -> None:
    inputs, outputs = items(2_000, seed=3, shift=0.5)
    report = compare(profile, Window.from_items(inputs, outputs, profile), embed="hashing")
    assert set(report.drifted_features) == {"amount", "country", "output.label"}
    for method in ("psi", "ks", "wasserstein"):
        assert report.result("amount", method).drifted
    for method in ("chi2", "jensenshannon"):
        assert report.result("country", method).drifted
    assert report.summary()["prediction_drift"]
    ks = report.result("amount", "ks")
    assert ks.p_value is not None and ks.p_value < 0.05 and ks.n_current == 2_000 and ks.n_reference == 3_000


def test_report_dict_is_json_with_the_documented_shape(profile: Profile) -> None:
    inputs, outputs = items(500, seed=4, shift=0.5)
    data = compare(profile, Window.from_items(inputs, outputs, profile), embed="hashing").to_dict()
    text = json.dumps(data, allow_nan=False)  # no NaN or infinity anywhere
    assert json.loads(text) == data
    assert set(data) >= {"summary", "features", "results", "window", "profile", "thresholds"}
    for result in data["results"]:
        assert set(result) >= {
            "feature",
            "kind",
            "method",
            "value",
            "threshold",
            "drifted",
            "p_value",
            "n_reference",
            "n_current",
        }
    plots = {f["feature"]: f["plot"] for f in data["features"]}
    numeric = plots["amount"]
    assert len(numeric["edges"]) == len(numeric["reference"]) + 1 == len(numeric["current"]) + 1
    assert sum(numeric["current"]) + numeric["current_below"] + numeric["current_above"] == 500
    bars = plots["country"]
    assert sum(bars["current"]) + bars["other"]["current"] == 500
    assert sum(bars["reference"]) + bars["other"]["reference"] == 3_000


def test_saved_profile_gives_the_same_report(profile: Profile, tmp_path: Path) -> None:
    path = profile.save(tmp_path)
    assert path == tmp_path / FILENAME
    loaded = Profile.load(tmp_path)
    inputs, outputs = items(400, seed=5, shift=0.2)
    window = Window.from_items(inputs, outputs, profile)
    first = compare(profile, window, embed="hashing").to_dict()
    second = compare(loaded, window, embed="hashing").to_dict()
    first["profile"] = second["profile"] = None
    assert first == second


def test_profile_file_errors_say_what_to_do(profile: Profile, tmp_path: Path) -> None:
    with pytest.raises(DriftError, match=r"no drift profile at .*profile.json.*retrain"):
        Profile.load(tmp_path)
    (tmp_path / FILENAME).write_text("{not json")
    with pytest.raises(DriftError, match="not valid JSON"):
        Profile.load(tmp_path)
    (tmp_path / FILENAME).write_text('{"some": "thing"}')
    with pytest.raises(DriftError, match="not a shipway drift profile"):
        Profile.load(tmp_path)
    data = profile.to_json()
    (tmp_path / FILENAME).write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(DriftError, match=r"version 99.*reads version 1"):
        Profile.load(tmp_path)
    del data["features"][0]["numeric"]["sample_base64_f8"]
    (tmp_path / FILENAME).write_text(json.dumps(data))
    with pytest.raises(DriftError, match=r"damaged drift profile.*sample_base64_f8"):
        Profile.load(tmp_path)


def test_profile_build_errors() -> None:
    with pytest.raises(DriftError, match="no rows"):
        Profile.build([])
    with pytest.raises(DriftError, match=r"kinds= names unknown features \['amout'\].*amount"):
        Profile.build([{"amount": 1.0}], kinds={"amout": "numeric"})
    with pytest.raises(DriftError, match="kinds\\['amount'\\] is 'number'; it must be one of numeric"):
        Profile.build([{"amount": 1.0}], kinds={"amount": "number"})
    with pytest.raises(DriftError, match=r"'code' is numeric but has no numbers.*'x1'"):
        Profile.build([{"code": "x1"}], kinds={"code": "numeric"})


def test_edge_cases_give_clear_verdicts(profile: Profile) -> None:
    with pytest.raises(DriftError, match="window holds no rows"):
        compare(profile, {"amount": []})
    # One row: the tests give a verdict (no evidence), the distances decline to.
    report = compare(profile, {"amount": [20.0], "country": ["fr"]}, embed="hashing")
    assert report.result("amount", "ks").drifted is False
    assert report.result("country", "chi2").drifted is False
    psi = report.result("amount", "psi")
    assert psi.drifted is None and psi.note is not None and "min_values = 30" in psi.note
    # Features absent from the window: no values, no verdict, and said so.
    absent = report.result("customer.age", "wasserstein")
    assert absent.drifted is None and absent.value is None and absent.note == "no values in the window"
    assert report.summary()["n_no_verdict"] > 0


def test_missing_invalid_and_unseen_values_are_counted(profile: Profile) -> None:
    rng = np.random.default_rng(6)
    amounts: list[Any] = rng.lognormal(3, 1, size=200).tolist()
    amounts[:10] = [None] * 10
    amounts[10:15] = [math.nan] * 5
    amounts[15:18] = ["12", "n/a", True]
    countries = rng.choice(["fr", "de", "uk", "es"], size=200).tolist()
    countries[:20] = ["it"] * 20
    report = compare(profile, {"amount": amounts, "country": countries}, embed="hashing")
    amount = next(f for f in report.features if f.feature == "amount")
    assert (amount.n_current, amount.n_missing, amount.n_invalid) == (182, 15, 3)
    new = report.result("country", "new_categories")
    assert new.value == pytest.approx(0.1) and new.drifted
    assert new.details["new"] == [{"category": "it", "count": 20}]


def test_constant_features() -> None:
    constant = Profile.build({"x": [3.0] * 100, "c": ["a"] * 100})
    same = compare(constant, {"x": [3.0] * 50, "c": ["a"] * 50})
    assert same.drifted_features == []
    moved = compare(constant, {"x": [3.5] * 50, "c": ["b"] * 50})
    assert moved.drifted_features == ["x", "c"]
    assert moved.result("x", "wasserstein").value == pytest.approx(0.5 / 0.001)  # Evidently's floor of the std


def test_thresholds_from_shipway_toml_are_honoured(profile: Profile, tmp_path: Path) -> None:
    inputs, outputs = items(2_000, seed=7, shift=0.5)
    window = Window.from_items(inputs, outputs, profile)
    (tmp_path / "shipway.toml").write_text(
        "[monitoring.drift.thresholds]\npsi = 50\nwasserstein = 50\n"
        '[monitoring.drift.features.amount]\nmethods = ["psi", "wasserstein"]\n'
        '[monitoring.drift.features."output.label"]\njensenshannon = 0.9\nchi2 = 1e-300\nnew_categories = 1\n'
    )
    thresholds = Thresholds.from_settings(load_settings(tmp_path))
    report = compare(profile, window, thresholds, embed="hashing")
    assert [r.method for r in report.features[0].results] == ["psi", "wasserstein"]
    assert report.result("amount", "psi").threshold == 50 and not report.result("amount", "psi").drifted
    assert "output.label" not in report.drifted_features
    assert "country" in report.drifted_features  # its own thresholds are the defaults


def test_bad_thresholds_are_refused_with_the_fix(profile: Profile, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown drift threshold .*\.pis\. Did you mean 'psi'"):
        Thresholds({"pis": 0.1})
    with pytest.raises(ConfigError, match=r"\.ks must be a number, got 'low'"):
        Thresholds({"ks": "low"})
    with pytest.raises(ConfigError, match=r"domain_classifier is 0.2; it must be between 0.5 and 1"):
        Thresholds({"domain_classifier": 0.2})
    with pytest.raises(ConfigError, match=r"methods names unknown methods \['kl'\]"):
        Thresholds(features={"amount": {"methods": ["kl"]}})
    with pytest.raises(ConfigError, match=r"feature 'amout', which the profile does not have. Did you mean 'amount'"):
        compare(profile, {"amount": [1.0]}, Thresholds(features={"amout": {"psi": 0.3}}))
    with pytest.raises(ConfigError, match=r"\['chi2'\], which do not apply to a numeric feature"):
        compare(profile, {"amount": [1.0]}, Thresholds(features={"amount": {"methods": ["chi2"]}}))
    (tmp_path / "shipway.toml").write_text("[monitoring.drift]\nthresholds = 3\n")
    with pytest.raises(ConfigError, match=r"'monitoring.drift.thresholds' .* must be dict"):
        load_settings(tmp_path)


def records(inputs: list[Any], outputs: list[Any], start: float = 1_000.0) -> list[PredictionRecord]:
    return [
        PredictionRecord(f"r{i}", start + i, "svc", "v1", 1.0, orjson.dumps(x), orjson.dumps(y))
        for i, (x, y) in enumerate(zip(inputs, outputs, strict=True))
    ]


def test_window_from_the_sqlite_prediction_log(profile: Profile, tmp_path: Path) -> None:
    inputs, outputs = items(300, seed=8, shift=0.5)
    logged = records(inputs, outputs)
    logged[0].status = 422  # refused input: not part of the traffic the model answered
    logged[1].inputs = b"{broken"
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.write_predictions(logged)
        window = window_from_store(store, service="svc", since=1_000.0, until=1_200.0, profile=profile)
        everything = window_from_store(store, service="svc")
    finally:
        store.close()
    assert window.n_rows == 198 and window.excluded == {
        "status other than 200": 1,
        "inputs or outputs not valid JSON": 1,
    }
    assert (window.first_ts, window.last_ts) == (1_002.0, 1_199.0)
    assert window.columns["amount"] == [x["amount"] for x in inputs[2:200]]
    assert window.columns["customer.age"] == [x["customer"]["age"] for x in inputs[2:200]]
    assert window.columns["output.label"] == [y["label"] for y in outputs[2:200]]
    assert everything.n_rows == 298
    assert set(everything.columns) >= {"amount", "country", "note", "output.score"}
    report = compare(profile, window, embed="hashing")
    assert set(report.drifted_features) == {"amount", "country", "output.label"}


def test_window_from_records_fills_fields_absent_from_some_rows() -> None:
    logged = records([{"a": 1}] * 3 + [{"b": "x"}] * 2, [1, 2, 3, 4, 5])
    window = window_from_records(iter(logged))
    assert window.n_rows == 5
    assert window.columns == {"a": [1, 1, 1, None, None], "b": [None, None, None, "x", "x"], "output": [1, 2, 3, 4, 5]}
