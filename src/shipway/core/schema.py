r"""Schemas: the typed edge of a pipeline, built from the service's type hints.

A `Schema` wraps a pydantic `TypeAdapter`, so pydantic models, dataclasses,
TypedDicts and plain hints (`str`, `dict[str, float]`, `list[Item]`) all work.

Its JSON schema (the OpenAPI document's) spells `\s` and `\S` in patterns as the
characters the validator takes for whitespace: pydantic's default engine (Rust's
regex) means Unicode White_Space, `regex_engine="python-re"` means `str.isspace()`,
and readers of the document mean something else again (ECMA-262, or Python's
`re.ASCII`). Spelled out, every reader agrees with the validator.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema

from shipway.errors import InputError, OutputError, ServiceError

__all__ = ["Schema", "describe_errors", "portable_pattern"]

# What `\s` matches, by pydantic's regex engine, as ranges of code points.
_WHITESPACE: dict[str, tuple[tuple[int, int], ...]] = {
    # Unicode's White_Space property (the regex crate's `\s`).
    "rust-regex": (
        (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
        (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
    ),
    # str.isspace(): White_Space and the separators U+001C..U+001F (what str.split() cuts on).
    "python-re": (
        (0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
        (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
    ),
}  # fmt: skip


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
        self._many: TypeAdapter[Any] | None = None  # list[hint], made on first use
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

    def validate_many(self, values: list[Any]) -> list[Any]:
        """`validate` over a batch: one call for the values that pass, and `validate`'s own
        error in the place of each value that fails (pydantic's batch error names them)."""
        if self._many is None:
            self._many = TypeAdapter(list[self.hint])  # type: ignore[name-defined]
        try:
            return list(self._many.validate_python(values))
        except ValidationError as err:
            bad = {e["loc"][0] for e in err.errors(include_url=False) if e["loc"] and isinstance(e["loc"][0], int)}
        good = [i for i in range(len(values)) if i not in bad]
        out: list[Any] = [None] * len(values)
        try:
            for i, value in zip(good, self._many.validate_python([values[i] for i in good]), strict=True):
                out[i] = value
        except ValidationError:  # pragma: no cover - pydantic named every failing value above
            bad = set(range(len(values)))
        for i in sorted(bad):
            try:
                out[i] = self.validate(values[i])
            except (InputError, OutputError) as failed:
                out[i] = failed
        return out

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
        return self.adapter.json_schema(ref_template=ref_template, schema_generator=_JsonSchema)

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


class _JsonSchema(GenerateJsonSchema):
    """pydantic's JSON schema, with patterns that mean what the validator makes of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._engines = ["rust-regex"]  # the regex engine of each model being written, innermost last

    def _configured(self, schema: Any, write: Any) -> JsonSchemaValue:
        self._engines.append((schema.get("config") or {}).get("regex_engine") or "rust-regex")
        try:
            return write(schema)  # type: ignore[no-any-return]
        finally:
            self._engines.pop()

    def model_schema(self, schema: Any) -> JsonSchemaValue:
        return self._configured(schema, super().model_schema)

    def dataclass_schema(self, schema: Any) -> JsonSchemaValue:
        return self._configured(schema, super().dataclass_schema)

    def typed_dict_schema(self, schema: Any) -> JsonSchemaValue:
        return self._configured(schema, super().typed_dict_schema)

    def str_schema(self, schema: CoreSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)  # type: ignore[arg-type]
        pattern = json_schema.get("pattern")
        if isinstance(pattern, str):
            engine = schema.get("regex_engine") or self._engines[-1]
            json_schema["pattern"] = portable_pattern(pattern, engine)
        return json_schema


def portable_pattern(pattern: str, engine: str = "rust-regex") -> str:
    """`pattern` with `\\s` and `\\S` written as the characters `engine` (pydantic's
    regex_engine) takes for whitespace, so that every dialect reads them alike."""
    spaces = _WHITESPACE.get(engine, _WHITESPACE["rust-regex"])
    space = _ranges(spaces)
    out: list[str] = []
    in_class = False
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            escaped = pattern[i + 1]
            if escaped == "s":
                out.append(space if in_class else f"[{space}]")
            elif escaped == "S":
                out.append(_ranges(_complement(spaces)) if in_class else f"[^{space}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(char)
        i += 1
        if char == "[" and not in_class:
            in_class = True
            for lead in ("^", "]"):  # a ] first in a class is a literal
                if pattern[i : i + 1] == lead:
                    out.append(lead)
                    i += 1
        elif char == "]" and in_class:
            in_class = False
    return "".join(out)


def _ranges(spans: tuple[tuple[int, int], ...]) -> str:
    """Ranges for a character class, as \\uXXXX escapes (ECMA-262, Python and Rust read them)."""
    return "".join(f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in spans)


def _complement(spans: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """The other characters of the Basic Multilingual Plane (\\uXXXX reaches no further)."""
    out, start = [], 0
    for lo, hi in spans:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    return (*out, (start, 0xFFFF))
