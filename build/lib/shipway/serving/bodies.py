"""Request bodies: the inputs in /predict and /predict/batch bodies, checked against the schema."""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

from shipway.core.pipeline import Pipeline
from shipway.errors import InputError, PayloadError

__all__ = ["parse_items", "parse_one"]


def parse_one(pipeline: Pipeline, body: bytes) -> Any:
    """The input in a /predict body; PayloadError (400) when it is not JSON, InputError (422) when it fails the schema."""
    try:
        return pipeline.input_schema.validate_json(body)
    except InputError as err:
        if err.details and err.details[0]["type"] == "json_invalid":
            raise PayloadError(
                f"the body is not valid JSON ({err.details[0]['msg']}); send a JSON document "
                f"with content-type application/json."
            ) from None
        raise


def parse_items(pipeline: Pipeline, body: bytes, max_items: int) -> list[Any]:
    """The inputs in a /predict/batch body, each checked; one InputError names every bad item."""
    try:
        data = from_json(body)  # pydantic's parser, as parse_one's: integers beyond 64 bits stay exact
    except ValueError as err:
        raise PayloadError(f'the body is not valid JSON ({err}); send {{"items": [...]}}.') from None
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise PayloadError(
            f'/predict/batch takes {{"items": [item, ...]}}; got a {type(data).__name__} '
            f"{'without an items list' if isinstance(data, dict) else ''}".rstrip()
            + "."
        )
    if len(items) > max_items:
        raise PayloadError(f"{len(items)} items is more than one request may hold ({max_items}); split it.")
    parsed: list[Any] = []
    details: list[dict[str, Any]] = []
    validate = pipeline.input_schema.validate
    for i, item in enumerate(items):
        try:
            parsed.append(validate(item))
        except InputError as err:
            details.extend({**d, "loc": ["items", i, *d["loc"]]} for d in err.details)
    if details:
        where = ".".join(str(p) for p in details[0]["loc"])
        raise InputError(f"{len(details)} problem(s) in the items; the first: {where}: {details[0]['msg']}", details)
    return parsed
