"""Schemas: the typed edge of a pipeline, built from the service's type hints.

A `Schema` wraps a pydantic `TypeAdapter`, so pydantic models, dataclasses,
TypedDicts and plain hints (`str`, `dict[str, float]`, `list[Item]`) all work.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from shipway.errors import InputError, OutputError, ServiceError

__all__ = ["Schema", "describe_errors"]


def describe_errors(err: ValidationError) -> list[dict[str, Any]]:
    """Turn pydantic's errors into the `details` list of our error shape."""
    details = []
    for e in err.errors(include_url=False):
        item: dict[str, Any] = {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        if "input" in e and not isinstance(e["input"], (dict, list)):
            item["input"] = e["input"]
        if e.get("ctx"):
            item["expected"] = {k: str(v) for k, v in e["ctx"].items()}
        details.append(item)
    return details


def _summary(details: list[dict[str, Any]]) -> str:
    first = details[0]
    where = ".".join(str(p) for p in first["loc"]) or "(the whole body)"
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"field {where}: {first['msg']}{more}"


class Schema:
    """The input or output type of a pipeline, with JSON in and out."""

    def __init__(self, hint: Any, role: str) -> None:
        self.hint = hint
        self.role = role  # "input" or "output": which error to raise
        try:
            self.adapter: TypeAdapter[Any] = TypeAdapter(hint)
        except Exception as err:  # pydantic cannot build a schema for this hint
            raise ServiceError(
                f"cannot use {hint!r} as the {role} type: {err}. Use a pydantic model, a dataclass, "
                f"typing_extensions.TypedDict, or plain hints such as str, float, dict[str, float]."
            ) from None

    @property
    def name(self) -> str:
        return getattr(self.hint, "__name__", None) or str(self.hint)

    def validate(self, value: Any) -> Any:
        """Check a Python value (a dict from JSON, or an instance) against the schema."""
        try:
            return self.adapter.validate_python(value)
        except ValidationError as err:
            raise self._error(err) from None

    def validate_json(self, body: bytes | str) -> Any:
        """Parse and check JSON in one pass (pydantic-core parses it)."""
        try:
            return self.adapter.validate_json(body)
        except ValidationError as err:
            raise self._error(err) from None

    def dump_json(self, value: Any) -> bytes:
        """Serialise a value of this schema's type to JSON bytes."""
        try:
            return self.adapter.dump_json(value)
        except Exception as err:  # pydantic raises several types here
            raise OutputError(
                f"the {self.role} value {value!r:.200} does not serialise as {self.name}: {err}. "
                f"Return an instance of {self.name} (or a dict with its fields)."
            ) from None

    def to_jsonable(self, value: Any) -> Any:
        """A JSON-compatible Python value (dicts, lists, str, numbers)."""
        try:
            return self.adapter.dump_python(value, mode="json")
        except Exception as err:
            raise OutputError(
                f"the {self.role} value {value!r:.200} does not serialise as {self.name}: {err}."
            ) from None

    def json_schema(self, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
        return self.adapter.json_schema(ref_template=ref_template)

    def _error(self, err: ValidationError) -> Exception:
        details = describe_errors(err)
        if self.role == "output":
            return OutputError(
                f"predict returned a value that does not match the output schema {self.name}: "
                f"{_summary(details)}. Make predict return what its return annotation says."
            )
        return InputError(
            f"the input does not match the schema {self.name}: {_summary(details)}",
            details,
        )
