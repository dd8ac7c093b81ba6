"""Timeline annotations on both backends: recorded with an id, read back per service and time
range, oldest first, and kept across a reopen."""

from __future__ import annotations

from shipway.store import open_store
from shipway.store.annotations import Annotation

pytest_plugins = ["store_fixtures"]


def test_annotations_are_recorded_and_read_by_service_and_time(store_url: str) -> None:
    with open_store(store_url) as store:
        first = store.add_annotation(Annotation("svc", 1_700_000_200.0, "ana", "traffic from the new app starts"))
        second = store.add_annotation(Annotation("svc", 1_700_000_100.0, "bo", "retrained on the March data"))
        store.add_annotation(Annotation("other", 1_700_000_150.0, "ana", "another service's note"))
        assert first.id > 0 and second.id not in (0, first.id)
        notes = store.annotations("svc")
        assert [(n.text, n.actor) for n in notes] == [
            ("retrained on the March data", "bo"),
            ("traffic from the new app starts", "ana"),
        ]
        assert [n.text for n in store.annotations("svc", since=1_700_000_150.0)] == ["traffic from the new app starts"]
        assert [n.text for n in store.annotations("svc", until=1_700_000_150.0)] == ["retrained on the March data"]
        assert [n.service for n in store.annotations()] == ["svc", "other", "svc"]
    with open_store(store_url) as store:
        assert store.annotations("svc")[1] == first
        assert store.annotations("nobody") == []
