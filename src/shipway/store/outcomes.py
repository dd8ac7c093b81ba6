"""Reading feedback: the payload the endpoint and the import accept, and what a logged output predicted.

One outcome is `{"request_id": "...", "label": "card_arrival"}` (the true label)
or `{"request_id": "...", "name": "clicked", "value": true}` (any other outcome),
with an optional `ts` (unix seconds or ISO 8601) of when it was observed. A body
is one outcome, a list of them, or `{"items": [...]}`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from shipway.errors import InputError
from shipway.store.feedback import Describe
from shipway.store.records import FeedbackRecord
from shipway.times import check_time

__all__ = ["MAX_ITEMS", "describe_fields", "parse_feedback"]

MAX_ITEMS = 100_000
_LABELS = ("label", "intent", "class", "category", "prediction", "predicted")
_SCORES = ("probability", "confidence", "score", "proba")
_RANKINGS = ("alternatives", "ranking", "top_k", "candidates")
_EXAMPLE = (
    '{"request_id": "3f2a...", "label": "card_arrival"} or {"request_id": "3f2a...", "name": "clicked", "value": true}'
)


def parse_feedback(data: Any) -> list[FeedbackRecord]:
    """Outcomes from a decoded JSON body; InputError naming every bad item."""
    items = data.get("items") if isinstance(data, Mapping) and "items" in data else data
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        raise InputError(f'feedback must be a JSON object, a list of them or {{"items": [...]}}, like {_EXAMPLE}')
    if len(items) > MAX_ITEMS:
        raise InputError(f"{len(items)} feedback items in one request; send at most {MAX_ITEMS} at a time")
    records, details = [], []
    now = time.time()
    for i, item in enumerate(items):
        try:
            records.append(_record(item, now))
        except ValueError as exc:
            details.append({"loc": [i], "msg": str(exc), "type": "feedback", "input": item})
    if details:
        first = details[0]
        raise InputError(
            f"{len(details)} of {len(items)} feedback items are not valid (item {first['loc'][0]}: {first['msg']})",
            details,
        )
    return records


def _record(item: Any, now: float) -> FeedbackRecord:
    if not isinstance(item, Mapping):
        raise ValueError(f"expected an object like {_EXAMPLE}, got {type(item).__name__}")
    request_id = item.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("`request_id` is missing or not a string: send the X-Request-ID the prediction answered with")
    unknown = set(item) - {"request_id", "label", "name", "value", "ts"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; the keys are request_id, label or name and value, and ts")
    if "label" in item:
        if "name" in item or "value" in item:
            raise ValueError("give either `label` or `name` with `value`, not both")
        name, value = "label", item["label"]
    elif "value" in item:
        name = item.get("name", "label")
        value = item["value"]
    else:
        raise ValueError("no outcome: add `label` (the true label) or `name` and `value` (another outcome)")
    if not isinstance(name, str) or not name or len(name) > 100:
        raise ValueError(f"`name` must be a non-empty string of at most 100 characters, got {name!r}")
    if value is None or isinstance(value, Mapping | list):
        raise ValueError(f"the outcome's value must be a string, number or boolean, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"the outcome's value must be a finite number, got {value!r}")
    return FeedbackRecord(request_id, orjson.dumps(value), name, _ts(item.get("ts"), now))


def _ts(raw: Any, now: float) -> float:
    if raw is None:
        return now
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return check_time(float(raw), now, "ts")
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return check_time((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp(), now, "ts", raw)
    raise ValueError(f"`ts` must be unix seconds or an ISO 8601 time like 2026-11-21T10:00:00Z, got {raw!r}")


def describe_fields(label: str = "", score: str = "", ranking: str = "") -> Describe:
    """What a logged output predicted, read from the named fields (or the usual names when empty).

    The rank of the actual label is 1 when it is the predicted label, else its
    place in the ranking field (a list of labels, or of objects holding the
    label field) plus one.
    """

    def describe(outputs: bytes, name: str, value: Any) -> tuple[str | None, float | None, int | None]:
        try:
            output = orjson.loads(outputs)
        except orjson.JSONDecodeError:
            return None, None, None
        if not isinstance(output, Mapping):
            predicted = None if output is None or isinstance(output, list) else str(output)
            return predicted, None, _rank(value, [predicted], name)
        label_key = label or _first(output, _LABELS, str)
        predicted = output.get(label_key) if label_key else None
        predicted = None if predicted is None else str(predicted)
        score_key = score or _first(output, _SCORES, float)
        confidence = output.get(score_key) if score_key else None
        if not isinstance(confidence, int | float) or isinstance(confidence, bool):
            confidence = None
        ranked: list[str | None] = [predicted]
        ranking_key = ranking or _first(output, _RANKINGS, list)
        for alt in output.get(ranking_key, ()) if ranking_key else ():
            ranked.append(str(alt.get(label_key)) if isinstance(alt, Mapping) else str(alt))
        return predicted, None if confidence is None else float(confidence), _rank(value, ranked, name)

    return describe


def _first(output: Mapping[str, Any], names: Sequence[str], kind: type) -> str | None:
    for key in names:
        value = output.get(key)
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return key
        if kind is not float and isinstance(value, kind):
            return key
    return None


def _rank(value: Any, ranked: list[str | None], name: str) -> int | None:
    if name != "label" or isinstance(value, bool):
        return None
    actual = str(value)
    for place, candidate in enumerate(ranked, start=1):
        if candidate == actual:
            return place
    return len(ranked) + 1 if ranked[0] is not None else None
