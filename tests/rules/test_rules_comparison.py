"""rules.comparison over a real store, SQLite and PostgreSQL: logged decision and shadow pairs,
a canary's requests told apart by the version that decided, other version pairs left out, and
scores on feedback that names labels and queues."""

from __future__ import annotations

import time

import orjson
from store_fixtures import make_record

from shipway.rules.comparison import compare_rules
from shipway.store import open_store
from shipway.store.outcomes import describe_fields, parse_feedback

pytest_plugins = ["store_fixtures"]


def _decision(version: str, queue: str, review: bool = False, fallback: bool = False) -> bytes:
    return orjson.dumps(
        {"queue": queue, "review": review, "fallback": fallback, "set": {}, "fired": [], "rules_version": version}
    )


def test_shadow_canary_and_other_pairs(store_url: str) -> None:
    now = time.time()
    rows = [
        # (live queue, shadow queue, canary decided, live version, shadow version, predicted, true label)
        ("general", "general", False, "v1", "v2", "a", "a"),
        ("general", "urgent", False, "v1", "v2", "b", "b"),
        ("general", "urgent", True, "v1", "v2", "b", "c"),  # the canary decided: urgent was returned
        ("urgent", "urgent", False, "v1", "v2", "c", None),
        ("general", "urgent", False, "v0", "v2", "a", None),  # an older live version: another pair
    ]
    records = []
    for i, (lq, sq, canary, lv, sv, predicted, _) in enumerate(rows):
        live, shadow = _decision(lv, lq), _decision(sv, sq)
        decision, logged_shadow = (shadow, live) if canary else (live, shadow)
        records.append(
            make_record(
                i,
                ts=now - 100 + i,
                rules_version=lv,
                mode="on",
                outputs=orjson.dumps({"label": predicted}),
                decision=decision,
                shadow=logged_shadow,
            )
        )
    records.append(make_record(9, ts=now - 50, rules_version="v1", mode="on", decision=_decision("v1", "general")))
    feedback = [{"request_id": f"req-{i}", "label": row[6]} for i, row in enumerate(rows) if row[6]]
    feedback.append({"request_id": "req-1", "name": "queue", "value": "urgent"})
    with open_store(store_url) as store:
        store.write_predictions(records)
        store.write_feedback(parse_feedback(feedback), describe_fields(), late_after_s=86400)
        found = compare_rules(store, "svc", since=now - 200, until=now).to_dict()
        older = compare_rules(store, "svc", since=now - 200, until=now, shadow="nope").to_dict()
    assert (found["live_version"], found["shadow_version"]) == ("v1", "v2")
    assert found["compared"] == 4 and found["agreed"] == 2 and found["canary"] == 1
    assert found["disagreements"][0]["live"] == "general" and found["disagreements"][0]["candidate"] == "urgent"
    assert found["disagreements"][0]["count"] == 2
    assert found["queue_totals"] == {"live": {"general": 3, "urgent": 1}, "shadow": {"urgent": 3, "general": 1}}
    assert found["without_shadow"] == 1 and found["other_pairs"] == {"v0 -> v2": 1}
    live, shadow = found["outcomes"]["live"], found["outcomes"]["shadow"]
    assert (live["labelled"], live["correct"], live["through"]) == (3, 2, 1)
    assert shadow["labelled"] == 3 and shadow["queue"] == {"labelled": 1, "correct": 1, "accuracy": 1.0}
    assert live["queue"]["accuracy"] == 0.0
    assert older["compared"] == 0 and older["shadow_version"] == "nope"
