"""A drift window counted by DuckDB from the export (store/log_window.py) gives the report the
store's own window gives, on both backends: numbers, categories, missing values, refused
requests, unreadable documents and the entries logged after the export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("duckdb")

from shipway.monitoring.drift._columns import CategoryCounts
from shipway.monitoring.drift.comparison import compare
from shipway.monitoring.drift.profile import Profile
from shipway.monitoring.drift.window import window_from_store
from shipway.store import PredictionRecord, Store, open_store
from shipway.store.columnar import LogSchema
from shipway.store.export import Exporter
from shipway.store.log_window import read_window

pytest_plugins = ["store_fixtures"]

T0 = 1_764_892_800.0  # 2025-12-05 00:00 UTC
INPUT_SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "number"}, "count": {"type": "integer"}, "country": {"type": "string"}},
}
OUTPUT_SCHEMA = {"type": "object", "properties": {"intent": {"type": "string"}, "probability": {"type": "number"}}}
SCHEMA = LogSchema.from_json_schemas(INPUT_SCHEMA, OUTPUT_SCHEMA)


def item(i: int, shift: float = 0.0) -> dict[str, object]:
    values: dict[str, object] = {
        "amount": round((i * 7919 % 1000) / 10 + shift, 2),
        "count": i % 7,
        "country": ["fr", "de", "uk", "es"][(i * 13) % (4 if shift else 3)],  # es: a new category
    }
    if i % 11 == 0:
        values["amount"] = None  # missing
    if i % 17 == 0:
        del values["country"]  # absent
    return values


def record(i: int, shift: float = 0.0, bad_json: bool = True) -> PredictionRecord:
    answer = {"intent": ["card", "refund", "fee"][(i * 31) % 3], "probability": round((i * 37 % 100) / 100, 2)}
    inputs = orjson.dumps(item(i, shift)) if i % 53 or not bad_json else b'{"amount": 1.0, "count"'  # not JSON
    return PredictionRecord(
        f"r{i}", T0 + i * 60.0, "svc", "m-1", 1.0, inputs, orjson.dumps(answer), status=500 if i % 29 == 0 else 200
    )


def fill(store: Store, start: int, stop: int, shift: float = 0.0) -> None:
    bad_json = store.url.startswith("sqlite")  # PostgreSQL's json columns refuse a document that is not JSON
    store.write_predictions([record(i, shift, bad_json) for i in range(start, stop)])


def profile() -> Profile:
    reference = [item(i) for i in range(5000, 7000)]
    answers = [{"intent": "card", "probability": (i % 100) / 100} for i in range(2000)]
    return Profile.build(reference, answers)


def test_a_counted_window_reports_as_the_store_s(store_url: str, tmp_path: Path) -> None:
    reference = profile()
    assert {f.name: f.kind for f in reference.features} == {
        "amount": "numeric",
        "count": "numeric",
        "country": "categorical",
        "output.intent": "categorical",
        "output.probability": "numeric",
    }
    root = tmp_path / "export"
    with open_store(store_url, tmp_path) as store:
        fill(store, 0, 1500, shift=3.0)
        Exporter(store, root, SCHEMA).run()
        fill(store, 1500, 1800, shift=3.0)  # logged after the export: read from the store
        store.write_predictions([PredictionRecord("other", T0 + 600, "other-svc", "m-1", 1.0, b"{}", b"{}")])
        since, until = T0 + 3600, T0 + 1700 * 60.0
        ours = window_from_store(store, service="svc", since=since, until=until, profile=reference, export=root)
        today = window_from_store(store, service="svc", since=since, until=until, profile=reference)
    assert isinstance(ours.columns["country"], CategoryCounts)  # counted by DuckDB, no row built
    assert ours.n_rows == today.n_rows and today.n_rows > 1000
    assert (ours.first_ts, ours.last_ts, ours.excluded) == (today.first_ts, today.last_ts, today.excluded)
    assert "status other than 200" in today.excluded
    report = compare(reference, ours).to_dict()
    assert report == compare(reference, today).to_dict()
    assert "country" in report["summary"]["drifted_features"]


def test_read_window_counts_in_one_scan_and_says_when_the_export_does_not_cover(tmp_path: Path) -> None:
    root = tmp_path / "export"
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        assert read_window(store, root, numbers=["input.amount"]) is None  # no export yet
        fill(store, 0, 200)
        Exporter(store, root, SCHEMA).run()
        read = read_window(store, root, service="svc", numbers=["input.amount"], counted=["input.country", "nope"])
    assert read is not None
    kept = [i for i in range(200) if i % 29 and i % 53]
    assert read.n_rows == len(kept)
    expected = np.array([item(i)["amount"] for i in kept], dtype=np.float64)  # None as NaN
    np.testing.assert_array_equal(np.sort(read.numbers["input.amount"]), np.sort(expected))
    # Every lookup reads the column again into a new array, which its caller may sort in place.
    first = read.numbers["input.amount"]
    first.sort()
    np.testing.assert_array_equal(read.numbers["input.amount"], expected)  # in the log's order, untouched
    countries = dict(read.counts["input.country"])
    assert countries[None] == sum(1 for i in kept if i % 17 == 0)
    assert sum(countries.values()) == len(kept)
    assert read.counts["nope"] == [(None, len(kept))]  # a column the files do not have: all null
