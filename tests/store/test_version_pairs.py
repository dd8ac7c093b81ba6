"""The versions table's read: each model and rules version pair that answered in a window,
with its requests, labels and first and last bucket, in both store backends."""

from __future__ import annotations

import orjson
from store_fixtures import make_record

from shipway.store import open_store
from shipway.store.outcomes import describe_fields, parse_feedback
from shipway.store.series import version_pairs

pytest_plugins = ["store_fixtures"]

T0 = 1_700_000_040.0  # a minute boundary
OUTPUTS = orjson.dumps({"label": "a", "score": 0.6})


def test_each_pair_of_versions_is_counted_in_its_window(store_url: str) -> None:
    versions = [("m-1", "rules-1"), ("m-1", "rules-2"), ("m-2", "rules-2"), ("m-2", None)]
    records = [
        make_record(
            i, ts=T0 + 60 * i, outputs=OUTPUTS, model_version=versions[i % 4][0], rules_version=versions[i % 4][1]
        )
        for i in range(40)
    ]
    with open_store(store_url) as store:
        store.write_predictions(records)
        labels = [{"request_id": f"req-{i}", "label": "a"} for i in range(0, 40, 3)]
        store.write_feedback(parse_feedback(labels), describe_fields())
        pairs = version_pairs(store, "svc", T0, T0 + 60 * 20, 300)  # the first 20 records
        other = version_pairs(store, "another", T0, T0 + 60 * 40, 300)
    expected = {}
    for i in range(20):
        model, rules = versions[i % 4]
        row = expected.setdefault((model, rules or ""), {"requests": 0, "labelled": 0, "minutes": []})
        row["requests"] += 1
        row["labelled"] += i % 3 == 0
        row["minutes"].append(T0 + 60 * i)
    assert {(p["model_version"], p["rules_version"]): (p["requests"], p["labelled"]) for p in pairs} == {
        key: (row["requests"], row["labelled"]) for key, row in expected.items()
    }
    for p in pairs:
        minutes = expected[(p["model_version"], p["rules_version"])]["minutes"]
        assert p["first"] == min(minutes) // 300 * 300 and p["last"] == max(minutes) // 300 * 300
    assert [p["last"] for p in pairs] == sorted((p["last"] for p in pairs), reverse=True)
    assert other == []
