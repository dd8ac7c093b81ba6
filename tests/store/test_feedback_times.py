"""Feedback `ts`: a time a service could have seen, or the item is refused (store.outcomes)."""

from __future__ import annotations

import time

import pytest

from shipway.errors import InputError
from shipway.store.outcomes import parse_feedback


@pytest.mark.parametrize(
    "ts", [1e308, -1e308, float("nan"), 2**70, -1, 0, 1e12, "9999-12-31T00:00:00Z", "1970-01-01", 946_684_799]
)
def test_a_ts_out_of_range_is_refused_naming_it(ts: object) -> None:
    with pytest.raises(InputError, match=r"ts=.* is out of range: a time must be from 2000-01-01") as caught:
        parse_feedback({"request_id": "r-1", "label": "card_arrival", "ts": ts})
    assert caught.value.details[0]["loc"] == [0]


def test_a_ts_in_range_is_kept() -> None:
    now = time.time()
    for ts, expected in [
        (946_684_800, 946_684_800.0),
        (now + 3600, now + 3600),
        ("2026-11-21T10:00:00Z", 1_795_255_200.0),
        ("2026-11-21T10:00:00", 1_795_255_200.0),  # UTC unless it says otherwise
        ("2026-11-21T12:00:00+02:00", 1_795_255_200.0),
    ]:
        [record] = parse_feedback({"request_id": "r-1", "label": "card_arrival", "ts": ts})
        assert record.ts == pytest.approx(expected)


def test_an_items_body_with_another_key_is_refused_naming_it() -> None:
    # Schemathesis found it (ST201): the document allows only "items" beside the list.
    with pytest.raises(InputError, match=r"holds only \"items\"; remove '-', 'source'"):
        parse_feedback({"items": [{"request_id": "r-1", "label": "a"}], "source": "crm", "-": 1})
    assert len(parse_feedback({"items": [{"request_id": "r-1", "label": "a"}]})) == 1
