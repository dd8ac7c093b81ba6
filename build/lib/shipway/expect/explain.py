"""Explain one input against an expectation: `shipway explain` and POST /explain with `expect`.

`expect` is a label (`card_arrival`: the label must equal it) or the JSON of an
`expect:` mapping from a suite (`{"label_in_top_k": {"label": "card_arrival", "k": 3}}`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from shipway.core.pipeline import Pipeline
from shipway.errors import ShipwayError, SuiteError
from shipway.expect.cases import Case, Failed
from shipway.expect.diagnosis import diagnose, final_output
from shipway.expect.fields import Fields
from shipway.expect.parsing import parse_expectations

__all__ = ["explain", "outputs_of", "parse_expect"]

BATCH = 512  # inputs per run_batch call: big enough to amortise, small enough to stream


def parse_expect(expect: str | dict[str, Any], fields: str | dict[str, Any] | None = None) -> tuple[Case, Fields]:
    """A one-input case and its fields mapping from `expect` (a label or JSON) and `fields` (JSON)."""
    if isinstance(expect, str):
        text = expect.strip()
        if not text:
            raise SuiteError('expect is empty; give a label, or a JSON expectation like {"label": "x"}.')
        spec: Any = _json(text, "expect") if text.startswith("{") else {"label": text}
    else:
        spec = expect
    mapping: Any = _json(fields, "fields") if isinstance(fields, str) and fields.strip() else fields
    case = Case(name="explain", input=None, expect=parse_expectations(spec))
    return case, Fields.parse(mapping or None)


def _json(text: str, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise SuiteError(f"{what} is not valid JSON ({err}): {text[:200]!r}") from None


def explain(
    pipeline: Pipeline,
    item: Any,
    expect: str | dict[str, Any],
    fields: str | dict[str, Any] | None = None,
    trace: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Whether `item`'s output meets `expect`, and if not, the diagnosis.

    Returns {"passed", "checks", "diagnosis"}; pass the item's `trace` (its
    `to_dict()`) when it was already run, to reuse it.
    """
    case, mapping = parse_expect(expect, fields)
    case.input = item
    trace = trace if trace is not None else pipeline.trace(item).to_dict()
    checks = case.evaluate([final_output(trace)], mapping)
    passed = all(c.passed for c in checks)
    diagnosis = None
    if not passed:
        diagnosis = diagnose(
            case, mapping, [trace], lambda stage, items: outputs_of(pipeline.without(stage), items)
        ).to_dict()
    return {"passed": passed, "checks": [c.to_dict() for c in checks], "diagnosis": diagnosis}


def outputs_of(pipeline: Pipeline, items: Sequence[Any]) -> list[Any]:
    """JSON-like outputs for many inputs, as an HTTP client would see them (a decided output
    with its `decision`), or `Failed` in an input's place."""
    to_json = pipeline.jsonable
    out: list[Any] = []
    for start in range(0, len(items), BATCH):
        for result in pipeline.run_batch(list(items[start : start + BATCH]), errors="return"):
            if isinstance(result, ShipwayError):
                out.append(Failed(str(result)))
                continue
            try:
                out.append(to_json(result))
            except ShipwayError as err:
                out.append(Failed(str(err)))
    return out
