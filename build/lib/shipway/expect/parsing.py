"""Expectations from their written form: a case's `expect:` mapping (YAML) or JSON.

The keys and what they take are listed in expectations.py and docs/validation.md;
`specs` turns expectations back into that form (what POST /explain accepts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shipway.errors import SuiteError
from shipway.expect.expectations import (
    Expectation,
    FieldEquals,
    FieldMatches,
    ItemAbsent,
    ItemInTopK,
    LabelEquals,
    LabelInTopK,
    ProbabilityAtLeast,
    QueueEquals,
)
from shipway.expect.fields import shorten
from shipway.expect.source import did_you_mean, where

__all__ = ["EXPECTATIONS", "parse_expectations", "specs"]


def _fail(node: Any, key: str | int | None, message: str) -> SuiteError:
    loc = where(node, key)
    return SuiteError(f"{loc}: {message}" if loc else message)


def _options(
    node: Any, key: str, value: Any, required: tuple[str, ...], optional: tuple[str, ...]
) -> Mapping[str, Any]:
    example = "{" + ", ".join(f"{k}: ..." for k in required) + "}"
    if not isinstance(value, Mapping):
        raise _fail(node, key, f"`{key}` takes a mapping like {example}, not {shorten(value, 60)}.")
    allowed = (*required, *optional)
    for name in value:
        if name not in allowed:
            raise _fail(
                value,
                name,
                f"`{key}` has no option {name!r}; its options are {', '.join(allowed)}.{did_you_mean(str(name), allowed)}",
            )
    missing = [k for k in required if k not in value]
    if missing:
        raise _fail(node, key, f"`{key}` needs {', '.join(missing)}: write it as {example}.")
    return value


def _positive_int(node: Any, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _fail(node, key, f"k must be a whole number of at least 1, not {value!r}.")
    return value


def _probability(node: Any, key: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise _fail(node, key, f"a probability must be a number from 0 to 1, not {value!r}.")
    return float(value)


def _path(node: Any, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(node, key, f"`path` must be a dotted field path like `decision.queue`, not {value!r}.")
    return value


def _parse_label(node: Any, value: Any) -> list[Expectation]:
    if isinstance(value, (Mapping, list)):
        raise _fail(
            node, "label", f"`label` takes one label, not {shorten(value, 60)}; use label_in_top_k for several."
        )
    return [LabelEquals(value)]


def _parse_in_top(node: Any, value: Any) -> list[Expectation]:
    opts = _options(node, "label_in_top_k", value, ("label", "k"), ())
    return [LabelInTopK(opts["label"], _positive_int(opts, "k", opts["k"]))]


def _parse_probability(node: Any, value: Any) -> list[Expectation]:
    if isinstance(value, Mapping):
        opts = _options(node, "probability_at_least", value, ("value",), ("label",))
        return [ProbabilityAtLeast(_probability(opts, "value", opts["value"]), opts.get("label"))]
    return [ProbabilityAtLeast(_probability(node, "probability_at_least", value))]


def _parse_item(node: Any, value: Any) -> list[Expectation]:
    opts = _options(node, "item_in_top_k", value, ("item", "k"), ("list", "key"))
    return [ItemInTopK(opts["item"], _positive_int(opts, "k", opts["k"]), opts.get("list"), opts.get("key"))]


def _parse_absent(node: Any, value: Any) -> list[Expectation]:
    opts = _options(node, "item_absent", value, ("item",), ("k", "list", "key"))
    k = _positive_int(opts, "k", opts["k"]) if "k" in opts else None
    return [ItemAbsent(opts["item"], k, opts.get("list"), opts.get("key"))]


def _parse_queue(node: Any, value: Any) -> list[Expectation]:
    if isinstance(value, (Mapping, list)):
        raise _fail(node, "queue", f"`queue` takes the queue's name, not {shorten(value, 60)}.")
    return [QueueEquals(value)]


def _parse_field(node: Any, value: Any) -> list[Expectation]:
    entries = value if isinstance(value, list) else [value]
    out: list[Expectation] = []
    for i, entry in enumerate(entries):
        at = value if isinstance(value, list) else node
        at_key: str | int = i if isinstance(value, list) else "field"
        if not isinstance(entry, Mapping):
            raise _fail(at, at_key, "`field` takes {path: ..., equals: ...} or {path: ..., matches: <regex>}.")
        opts = _options(at, "field", entry, ("path",), ("equals", "matches"))
        path = _path(opts, "path", opts["path"])
        if ("equals" in opts) == ("matches" in opts):
            raise _fail(at, at_key, f"`field` for {path!r} needs exactly one of `equals` and `matches`.")
        if "equals" in opts:
            out.append(FieldEquals(path, opts["equals"]))
            continue
        pattern = opts["matches"]
        try:
            re.compile(str(pattern))
        except re.error as err:
            raise _fail(opts, "matches", f"`matches` is not a valid regular expression ({err}): {pattern!r}.") from None
        out.append(FieldMatches(path, None, str(pattern)))
    return out


EXPECTATIONS = {
    "label": _parse_label,
    "label_in_top_k": _parse_in_top,
    "probability_at_least": _parse_probability,
    "item_in_top_k": _parse_item,
    "item_absent": _parse_absent,
    "queue": _parse_queue,
    "field": _parse_field,
}


def parse_expectations(spec: Any, context: str = "expect") -> list[Expectation]:
    """Expectations from a case's `expect:` mapping (from YAML, or JSON sent to /explain)."""
    if not isinstance(spec, Mapping):
        raise _fail(spec, None, f"`{context}` must be a mapping like {{label: card_arrival}}, not {shorten(spec, 60)}.")
    out: list[Expectation] = []
    for key, value in spec.items():
        parse = EXPECTATIONS.get(key)
        if parse is None:
            raise _fail(
                spec,
                key,
                f"unknown expectation {key!r}; the expectations are {', '.join(EXPECTATIONS)}."
                f"{did_you_mean(str(key), EXPECTATIONS)}",
            )
        out.extend(parse(spec, value))
    return out


def specs(expectations: list[Expectation]) -> dict[str, Any]:
    """The `expect:` mapping for a list of expectations (the inverse of parse_expectations)."""
    out: dict[str, Any] = {}
    for e in expectations:
        if e.key == "field":
            out.setdefault("field", []).append(e.spec())
        else:
            out[e.key] = e.spec()
    return out
