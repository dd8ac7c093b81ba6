"""Expectations from their written form: a case's `expect:` mapping (YAML) or JSON.

The keys and what they take are listed in expectations.py and docs/validation.md;
`specs` turns expectations back into that form (what POST /explain accepts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shipway.common.positions import where
from shipway.common.suggest import did_you_mean
from shipway.errors import SuiteError
from shipway.expect.expectations import (
    BOUNDS,
    Expectation,
    FieldEquals,
    FieldMatches,
    InRange,
    ItemAbsent,
    ItemInTopK,
    LabelEquals,
    LabelInTopK,
    ProbabilityAtLeast,
    QueueEquals,
)
from shipway.expect.fields import shorten

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


def _bounds(node: Any, key: str | int, opts: Mapping[str, Any], what: str) -> tuple[tuple[str, float], ...]:
    """The range bounds in `opts`: one lower (at_least or above) and/or one upper (at_most or below)."""
    bounds = []
    for name in BOUNDS:
        if name in opts:
            v = opts[name]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:
                raise _fail(opts, name, f"`{name}` must be a number, not {shorten(v, 40)}.")
            bounds.append((name, float(v)))
    names = [b for b, _ in bounds]
    if not bounds or {"at_least", "above"} <= set(names) or {"at_most", "below"} <= set(names):
        raise _fail(
            node,
            key,
            f"{what} needs a lower bound (at_least or above), an upper bound (at_most or below), or one of each, "
            f"like {{at_least: 0.2, below: 0.8}}; it has {', '.join(names) or 'none'}.",
        )
    lower = next((v for b, v in bounds if b in ("at_least", "above")), None)
    upper = next((v for b, v in bounds if b in ("at_most", "below")), None)
    if lower is not None and upper is not None and lower > upper:
        raise _fail(node, key, f"{what} is empty: its lower bound {lower:g} is above its upper bound {upper:g}.")
    return tuple(bounds)


def _parse_score(node: Any, value: Any) -> list[Expectation]:
    opts = _options(node, "score", value, (), tuple(BOUNDS))
    return [InRange(_bounds(node, "score", opts, "`score`"))]


def _parse_field(node: Any, value: Any) -> list[Expectation]:
    entries = value if isinstance(value, list) else [value]
    out: list[Expectation] = []
    for i, entry in enumerate(entries):
        at = value if isinstance(value, list) else node
        at_key: str | int = i if isinstance(value, list) else "field"
        if not isinstance(entry, Mapping):
            raise _fail(
                at,
                at_key,
                "`field` takes {path: ..., equals: ...}, {path: ..., matches: <regex>} "
                "or {path: ..., at_least: ..., at_most: ...}.",
            )
        opts = _options(at, "field", entry, ("path",), ("equals", "matches", *BOUNDS))
        path = _path(opts, "path", opts["path"])
        if any(b in opts for b in BOUNDS):
            if "equals" in opts or "matches" in opts:
                raise _fail(at, at_key, f"`field` for {path!r} takes `equals`, `matches` or a range, not both.")
            out.append(InRange(_bounds(at, at_key, opts, f"`field` for {path!r}"), path))
            continue
        if ("equals" in opts) == ("matches" in opts):
            raise _fail(
                at,
                at_key,
                f"`field` for {path!r} needs one of `equals`, `matches` or a range (at_least, above, at_most, below).",
            )
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
    "score": _parse_score,
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
        if e.key == "field" or (isinstance(e, InRange) and e.path is not None):
            out.setdefault("field", []).append(e.spec())
        else:
            out[e.key] = e.spec()
    return out
