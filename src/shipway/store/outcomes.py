"""Reading feedback: the payload the endpoint and the import accept, and what a logged output predicted.

One outcome is `{"request_id": "...", "label": "card_arrival"}` (the true label)
or `{"request_id": "...", "name": "clicked", "value": true}` (any other outcome),
with an optional `ts` (unix seconds or ISO 8601) of when it was observed. A body
is one outcome, a list of them, or `{"items": [...]}`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from shipway.common.times import check_time, parse_iso
from shipway.errors import ConfigError, InputError
from shipway.store.records import FeedbackRecord

__all__ = [
    "MAX_ITEMS",
    "FeedbackItem",
    "OutputReader",
    "describe_fields",
    "parse_feedback",
    "plain_actual",
    "reader_of",
]

MAX_ITEMS = 100_000
_LABELS = ("label", "intent", "class", "category", "prediction", "predicted")
_SCORES = ("probability", "confidence", "score", "proba")
_RANKINGS = ("alternatives", "ranking", "top_k", "candidates", "items")
_ITEMS = ("item", "id", "label", "intent", "name")
FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]
_EXAMPLE = (
    '{"request_id": "3f2a...", "label": "card_arrival"} or {"request_id": "3f2a...", "name": "clicked", "value": true}'
)


def parse_feedback(data: Any, reader: OutputReader | None = None) -> list[FeedbackRecord]:
    """Outcomes from a decoded JSON body; InputError naming every bad item (with `reader`, also a
    label that is neither of a binary score's named labels)."""
    items = data
    if isinstance(data, Mapping) and "items" in data:
        # The wrapper holds nothing else (the OpenAPI document says so): a stray key is a typo.
        extra = sorted(str(key) for key in data if key != "items")
        if extra:
            raise InputError(
                f'a {{"items": [...]}} feedback body holds only "items"; remove {", ".join(map(repr, extra))}'
            )
        items = data["items"]
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
            records.append(_record(item, now, reader))
        except ValueError as exc:
            details.append({"loc": [i], "msg": str(exc), "type": "feedback", "input": item})
    if details:
        first = details[0]
        raise InputError(
            f"{len(details)} of {len(items)} feedback items are not valid (item {first['loc'][0]}: {first['msg']})",
            details,
        )
    return records


class FeedbackItem(BaseModel):
    """One outcome as the body gives it; `check` turns pydantic's errors into the messages below."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    request_id: str = Field(min_length=1)
    label: StrictStr | StrictBool | StrictInt | FiniteFloat | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    value: StrictStr | StrictBool | StrictInt | FiniteFloat | None = None
    ts: StrictInt | StrictFloat | str | None = None

    @model_validator(mode="after")
    def one_outcome(self) -> FeedbackItem:
        given = self.model_fields_set
        if "name" in given and self.name is None:
            raise ValueError(f"`name` must be a non-empty string of at most 100 characters, got {None!r}")
        if "label" in given and given & {"name", "value"}:
            raise ValueError("give either `label` or `name` with `value`, not both")
        if "label" not in given and "value" not in given:
            raise ValueError("no outcome: add `label` (the true label) or `name` and `value` (another outcome)")
        if ("label" in given and self.label is None) or ("value" in given and self.value is None):
            raise ValueError(f"the outcome's value must be a string, number or boolean, got {None!r}")
        return self

    def outcome(self) -> tuple[str, Any]:
        return ("label", self.label) if "label" in self.model_fields_set else (self.name or "label", self.value)


_ITEM = TypeAdapter(FeedbackItem)
# What each refused field is told, by the field pydantic names (the first error of an item).
_FIXES = {
    "request_id": "`request_id` is missing or not a string: send the X-Request-ID the prediction answered with",
    "name": "`name` must be a non-empty string of at most 100 characters, got {input!r}",
    "label": "the outcome's value must be a string, number or boolean, got {input!r}",
    "value": "the outcome's value must be a string, number or boolean, got {input!r}",
    "ts": "`ts` must be unix seconds or an ISO 8601 time like 2026-11-21T10:00:00Z, got {input!r}",
}


def _record(item: Any, now: float, reader: OutputReader | None = None) -> FeedbackRecord:
    if not isinstance(item, Mapping):
        raise ValueError(f"expected an object like {_EXAMPLE}, got {type(item).__name__}")
    try:
        checked = _ITEM.validate_python(dict(item))
    except ValidationError as err:
        raise ValueError(_message(err, item)) from None
    name, value = checked.outcome()
    if reader is not None:
        reader.actual(name, value)  # a label the service cannot score is refused here, not stored
    return FeedbackRecord(checked.request_id, orjson.dumps(value), name, _ts(checked.ts, now))


def _message(err: ValidationError, item: Mapping[str, Any]) -> str:
    """The message of the first problem pydantic found, in the words of `_FIXES`."""
    errors = err.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"unknown keys {unknown}; the keys are request_id, label or name and value, and ts"
    first = errors[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    if field in _FIXES:
        shown = first["input"] if field in item else None
        if field in ("label", "value") and isinstance(shown, float):
            return f"the outcome's value must be a finite number, got {shown!r}"
        return _FIXES[field].format(input=shown)
    return str(first["ctx"]["error"]) if "ctx" in first and "error" in first["ctx"] else str(first["msg"])


def _ts(raw: Any, now: float) -> float:
    if raw is None:
        return now
    if isinstance(raw, int | float):
        return check_time(float(raw), now, "ts")
    try:
        return check_time(parse_iso(raw, "ts"), now, "ts", raw)
    except ValueError as err:
        if "out of range" in str(err):
            raise
        raise ValueError(_FIXES["ts"].format(input=raw)) from None


class OutputReader:
    """What a logged output predicted (a `Describe`), and what kind of output it is.

    Fields may be dotted paths into the output (`items.0.item`); empty ones mean the
    usual names. The rank of the actual label is 1 when it is the predicted label,
    else its place in the ranking field (a list of labels, or of objects holding the
    label field or an `item`, `id` or `label` key) plus one, or 0 when the ranking
    does not list it. An output that is only a ranking (no label) predicts its first
    item. Outcomes other than `label` are ranked too when their value is text (the
    item a user clicked, say).
    """

    def __init__(
        self,
        label: str = "",
        score: str = "",
        ranking: str = "",
        *,
        kind: str = "auto",
        threshold: float = 0.5,
        positive: str = "",
        negative: str = "",
    ) -> None:
        self.label, self.score, self.ranking = label, score, ranking
        self.kind, self.threshold = kind, threshold
        # A binary score's labels by name ("fraud", "ok"): `label` outcomes that name them count as 1 and 0.
        self.positive, self.negative = positive, negative

    def actual(self, name: str, value: Any) -> tuple[str | None, float | None]:
        """An outcome as a label (text) and as a number, the one reading of both: a `label` that
        names the positive or negative label is 1 or 0; ValueError for another label when they
        are named."""
        if name == "label" and self.positive and isinstance(value, str):
            if value == self.positive:
                return value, 1.0
            if value == self.negative:
                return value, 0.0
            raise ValueError(
                f"label {value!r} is neither monitoring.positive_label {self.positive!r} nor "
                f"monitoring.negative_label {self.negative!r}; send one of them (or the JSON numbers 1 and 0)"
            )
        return plain_actual(value)

    def binary(self, value: Any) -> int | None:
        """A `label` outcome as 1 or 0 for a binary score: 0/1, false/true or a named label; None otherwise."""
        if isinstance(value, int | float) and value in (0, 1):
            return int(value)
        if self.positive and isinstance(value, str) and value in (self.positive, self.negative):
            return int(value == self.positive)
        return None

    def verdict(self, positive: bool) -> str:
        """The label a binary score predicts: the positive or negative label's name, else "1" or "0"."""
        if self.positive:
            return self.positive if positive else self.negative
        return "1" if positive else "0"

    def __call__(self, outputs: bytes, name: str, value: Any) -> tuple[str | None, float | None, int | None]:
        try:
            output = orjson.loads(outputs)
        except orjson.JSONDecodeError:
            return None, None, None
        return self.read(output, name, value)

    def read(self, output: Any, name: str, value: Any) -> tuple[str | None, float | None, int | None]:
        """What an output already decoded from JSON predicted, against the outcome `name` = `value`."""
        if isinstance(output, float):
            output = {"score": output}  # a bare score
        if not isinstance(output, Mapping):
            predicted = None if output is None or isinstance(output, list) else str(output)
            return predicted, None, _rank(value, [predicted], name)
        label_key = self.label or _first(output, _LABELS, str)
        predicted = _at(output, label_key)
        predicted = None if predicted is None or isinstance(predicted, Mapping | list) else str(predicted)
        confidence = _at(output, self.score or _first(output, _SCORES, float))
        if not isinstance(confidence, int | float) or isinstance(confidence, bool):
            confidence = None
        listed = _at(output, self.ranking or _first(output, _RANKINGS, list))
        items = [_item(alt, label_key) for alt in listed] if isinstance(listed, list) else []
        if items and (predicted is None or items[0] == predicted):
            ranked: list[str | None] = list(items)  # the list is the whole ranking, best first
            predicted = items[0]
        elif predicted is None and confidence is not None and name == "label" and self.binary(value) is not None:
            # A score against a 0/1 (or named) outcome predicts the positive label at or above the threshold.
            above = confidence >= self.threshold
            return self.verdict(above), float(confidence), 1 if self.binary(value) == int(above) else 0
        else:
            ranked = [predicted, *items]
            if self.kind == "binary" and self.positive and confidence is not None and predicted is not None:
                # A named-label classifier's probability is its predicted label's: the score is the positive's.
                if predicted in (self.positive, self.negative):
                    confidence = confidence if predicted == self.positive else 1.0 - confidence
        return predicted, None if confidence is None else float(confidence), _rank(value, ranked, name)

    def kind_of(self, outputs: bytes) -> str | None:
        """The kind set, or else the kind of one logged output: "label", "ranking", "score"
        (binary or regression: the outcomes tell) or None (not known)."""
        if self.kind != "auto":
            return self.kind
        try:
            output = orjson.loads(outputs)
        except orjson.JSONDecodeError:
            return None
        if isinstance(output, str | int) and not isinstance(output, bool):
            return "label"
        if isinstance(output, float):
            return "score"
        if not isinstance(output, Mapping):
            return None
        label_key = self.label or _first(output, _LABELS, str)
        predicted = _at(output, label_key)
        listed = _at(output, self.ranking or _first(output, _RANKINGS, list))
        if isinstance(listed, list) and listed:
            if predicted is None or str(predicted) == _item(listed[0], label_key):
                return "ranking"
        if predicted is not None:
            return "label"
        found = _at(output, self.score or _first(output, _SCORES, float))
        return "score" if isinstance(found, int | float) and not isinstance(found, bool) else None


def reader_of(settings: Mapping[str, Any]) -> OutputReader:
    """The reader the project's monitoring settings describe; ConfigError for half a pair of named labels."""
    positive, negative = settings["monitoring.positive_label"], settings["monitoring.negative_label"]
    if bool(positive) != bool(negative) or (positive and positive == negative):
        raise ConfigError(
            "a binary score's named labels need both monitoring.positive_label and monitoring.negative_label, "
            f"and they must differ (got {positive!r} and {negative!r}); set both, like "
            'positive_label = "fraud" and negative_label = "ok", or neither for 0/1 outcomes'
        )
    return OutputReader(
        settings["monitoring.label_field"],
        settings["monitoring.score_field"],
        settings["monitoring.ranking_field"],
        kind=settings["monitoring.kind"],
        threshold=settings["monitoring.threshold"],
        positive=positive,
        negative=negative,
    )


def describe_fields(
    label: str = "", score: str = "", ranking: str = "", *, kind: str = "auto", threshold: float = 0.5
) -> OutputReader:
    """What a logged output predicted, read from the named fields (or the usual names when empty)."""
    return OutputReader(label, score, ranking, kind=kind, threshold=threshold)


def _at(output: Mapping[str, Any], path: str | None) -> Any:
    """The value at a field name or a dotted path (`items.0.item`), None where there is none."""
    if not path:
        return None
    if path in output:
        return output[path]
    found: Any = output
    for part in path.split("."):
        if isinstance(found, Mapping):
            found = found.get(part)
        elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
            found = found[int(part)]
        else:
            return None
    return found


def _item(alt: Any, label_key: str | None) -> str:
    """The label of one entry of a ranking: itself, or its label field, or its `item`, `id` or `label`."""
    if not isinstance(alt, Mapping):
        return str(alt)
    for key in (label_key.rpartition(".")[2] if label_key else None, *_ITEMS):
        if key and key in alt:
            return str(alt[key])
    return str(alt)


def plain_actual(value: Any) -> tuple[str | None, float | None]:
    """An outcome as a label (strings and integers) and as a number (numbers and booleans)."""
    if isinstance(value, bool):
        return None, float(value)
    if isinstance(value, int | float):
        return (str(value) if isinstance(value, int) else None), float(value)
    if isinstance(value, str):
        return value, None
    return None, None


def _first(output: Mapping[str, Any], names: Sequence[str], kind: type) -> str | None:
    for key in names:
        value = output.get(key)
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return key
        if kind is not float and isinstance(value, kind):
            return key
    return None


def _rank(value: Any, ranked: list[str | None], name: str) -> int | None:
    if isinstance(value, bool) or (name != "label" and not isinstance(value, str)):
        return None
    actual = str(value)
    for place, candidate in enumerate(ranked, start=1):
        if candidate == actual:
            return place
    return 0 if ranked and ranked[0] is not None else None
