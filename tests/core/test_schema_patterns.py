"""Patterns in the OpenAPI document mean what the validator does with them.

pydantic checks `pattern` with Rust's regex (or Python's re, when a model says so); readers
of the document read ECMA-262, and schemathesis reads Python's re with re.ASCII. `\\s` is a
different set of characters in each, so the document spells it out."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipway.core.schema import Schema, portable_pattern
from shipway.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "banking77"
BMP = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]


def banking77() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schema_patterns_banking77", EXAMPLE / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVICE = banking77()


class RustText(BaseModel):
    text: str = Field(pattern=r"\S")


class PythonText(BaseModel):
    model_config = ConfigDict(regex_engine="python-re")
    text: str = Field(pattern=r"\S")


class Spaced(BaseModel):
    text: str = Field(pattern=r"^[\s_]+$")


def accepted(model: type[BaseModel], text: str) -> bool:
    try:
        model(text=text)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("model", [RustText, PythonText, Spaced])
def test_every_reader_of_the_document_agrees_with_the_validator_on_each_character(model: type[BaseModel]) -> None:
    pattern = Schema(model, "input").json_schema()["properties"]["text"]["pattern"]
    readings = {"python": re.compile(pattern), "schemathesis": re.compile(pattern, re.ASCII)}
    for name, reading in readings.items():
        disagree = [c for c in BMP if (reading.search(c) is not None) != accepted(model, c)]
        assert not disagree, f"{name} reads {pattern!r} otherwise than the validator for {disagree[:10]}"


def test_patterns_without_whitespace_classes_are_left_as_written() -> None:
    for pattern in (r"^[a-z]+$", r"\d{3}-\w+", r"\\s", r"[\]s]", r"a\.b"):
        assert portable_pattern(pattern) == pattern
    assert portable_pattern(r"[^\s]") == portable_pattern(r"\S")


def test_nested_models_keep_their_own_engine() -> None:
    class Outer(BaseModel):
        inner: PythonText
        plain: str = Field(pattern=r"\s")

    schema = Schema(Outer, "input").json_schema()
    assert "\\u001c" in schema["$defs"]["PythonText"]["properties"]["text"]["pattern"]
    assert "\\u001c" not in schema["properties"]["plain"]["pattern"]


def test_banking77_refuses_text_of_separators_or_next_line_alone() -> None:
    schema = Schema(SERVICE.Message, "input")
    pattern = re.compile(schema.json_schema()["properties"]["text"]["pattern"], re.ASCII)
    for text in ("\x1c\x1d\x1e\x1f", "\x85", " \x1f\t"):
        with pytest.raises(InputError, match="text"):
            schema.validate({"text": text})
        assert pattern.search(text) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_banking77_stages_never_fail_on_text_the_schema_takes(text: str) -> None:
    try:
        message = SERVICE.Message(text=text)
    except ValidationError:
        return
    out = SERVICE.truncate(SERVICE.normalise(message))
    assert 1 <= len(out.text) <= SERVICE.MAX_CHARS


def test_banking77_takes_a_character_exactly_when_str_split_keeps_it() -> None:
    """The example's pattern (Python's \\S, written for Rust's engine) over every code point: a
    one-character message passes the schema exactly when normalise's str.split() keeps it."""
    schema = Schema(SERVICE.Message, "input")
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    checked = schema.validate_many([{"text": c} for c in chars])
    refused = [c for c, got in zip(chars, checked, strict=True) if isinstance(got, InputError)]
    assert refused == [c for c in chars if not c.split()]
    assert "\x1c" in refused and "\x85" in refused and "\u3000" in refused
