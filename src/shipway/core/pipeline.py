"""Pipeline: input schema -> stages -> predict -> stages -> output schema.

The same object serves HTTP (through `parse`, `run_items`, `render`), runs one
input in-process with a full trace (`trace`), and runs datasets or logged
traffic offline (`run_batch`). Nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import orjson

from shipway.core.schema import Schema
from shipway.core.stage import Stage
from shipway.core.trace import StageRecord, Trace
from shipway.errors import OutputError, PredictError, ShipwayError

__all__ = ["Decided", "Pipeline"]


@dataclass(slots=True)
class Decided:
    """An output together with the decision a rules stage took about it.

    `output` is the answer (the model's output with the rules' overrides, or a
    fallback), `model_output` what the stages before the rules returned,
    `decision` the JSON-ready decision that is returned (None when only shadow
    rules ran), and `shadow` the one a
    shadow rule set took, logged and not returned.
    """

    output: Any
    decision: dict[str, Any] | None  # None: only shadow rules ran
    model_output: Any
    shadow: dict[str, Any] | None = None


class Pipeline:
    """A service's stages, ready to run. Built by `Service.setup()`."""

    def __init__(
        self,
        stages: Sequence[Stage],
        input_schema: Schema,
        output_schema: Schema,
        ids: dict[str, str | None] | None = None,
    ) -> None:
        self.stages = list(stages)
        self.input_schema = input_schema
        self.output_schema = output_schema
        self.ids = dict(ids or {})

    @property
    def stage_names(self) -> list[str]:
        return ["input", *(s.name for s in self.stages), "output"]

    # -- one input, in-process -------------------------------------------------

    def run(self, item: Any) -> Any:
        """Run one input (a dict, JSON bytes, or an instance); return the output."""
        value = self.parse(item)
        request = value
        for stage in self.stages:
            try:
                value = stage.one(value, request)
            except ShipwayError:
                raise
            except Exception as err:
                raise PredictError(stage.name, err) from err
        return self._checked(value)

    def trace(self, item: Any) -> Trace:
        """Run one input recording every stage; errors are recorded, not raised."""
        trace = Trace(ids=dict(self.ids))
        record = StageRecord("input", "input", item)
        trace.stages.append(record)
        started = perf_counter()
        try:
            value = self.parse(item)
        except ShipwayError as err:
            record.seconds, record.error = perf_counter() - started, str(err)
            return trace
        record.output, record.seconds = value, perf_counter() - started
        request = value
        for stage in self.stages:
            record = StageRecord(stage.name, stage.kind, value)
            trace.stages.append(record)
            started = perf_counter()
            try:
                value = stage.one(value, request)
            except Exception as err:
                record.seconds = perf_counter() - started
                record.error = f"{type(err).__name__}: {err}"
                return trace
            record.output, record.seconds = value, perf_counter() - started
        record = StageRecord("output", "output", value)
        trace.stages.append(record)
        started = perf_counter()
        try:
            record.output = self.jsonable(self._checked(value))
        except ShipwayError as err:
            record.error = str(err)
        record.seconds = perf_counter() - started
        return trace

    # -- many inputs -----------------------------------------------------------

    def run_batch(self, items: Sequence[Any], *, errors: str = "raise") -> list[Any]:
        """Run many inputs through the batch forms of the stages.

        With errors="return", a failed item's place holds its ShipwayError and
        the other items still run; with "raise", the first failure is raised.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', not {errors!r}")
        parsed: list[Any] = []
        for item in items:
            try:
                parsed.append(self.parse(item))
            except ShipwayError as err:
                if errors == "raise":
                    raise
                parsed.append(err)
        results = self.run_items(parsed)
        if errors == "raise":
            for r in results:
                if isinstance(r, ShipwayError):
                    raise r
        return results

    def run_items(self, items: list[Any]) -> list[Any]:
        """Run already-parsed inputs; a failure stays in its item's place.

        This is the serving hot path: with no failures every stage is called
        once with the whole list.
        """
        values = list(items)
        requests = items
        failed = any(isinstance(v, ShipwayError) for v in values)
        for stage in self.stages:
            if not failed:
                try:
                    out = stage.many(values, requests)
                except ShipwayError as err:
                    out = None
                    if len(values) == 1:
                        values = [err]
                        failed = True
                        continue
                except Exception as err:
                    out = None
                    if len(values) == 1:
                        values = [PredictError(stage.name, err)]
                        failed = True
                        continue
                if out is not None:
                    if len(out) != len(values):
                        raise OutputError(
                            f"stage {stage.name!r} returned {len(out)} results for {len(values)} "
                            f"inputs; a batch form must return one result per input, in order."
                        )
                    values = list(out)
                    continue
            # Isolate failures: run each live item alone so one bad input
            # cannot fail the others in its batch.
            values = [self._one_isolated(stage, v, r) for v, r in zip(values, requests, strict=False)]
            failed = True
        return [v if isinstance(v, ShipwayError) else self._validate_output(v) for v in values]

    # -- the schema edges ------------------------------------------------------

    def parse(self, item: Any) -> Any:
        """Apply the input schema. Bytes are JSON, parsed and validated in one pass;
        a str is JSON too unless the input type is itself str."""
        if isinstance(item, bytes) or (isinstance(item, str) and self.input_schema.hint is not str):
            return self.input_schema.validate_json(item)
        return self.input_schema.validate(item)

    def render(self, output: Any) -> bytes:
        """The JSON body of one output; a decided output carries its `decision`."""
        if isinstance(output, Decided):
            return orjson.dumps(self.jsonable(output))
        return self.output_schema.dump_json(output)

    def render_model_output(self, output: Any) -> bytes:
        """The JSON of what the model side returned, before any rules."""
        return self.output_schema.dump_json(output.model_output if isinstance(output, Decided) else output)

    def jsonable(self, output: Any) -> Any:
        """A JSON-ready value of an output; a decided one gains a `decision` field
        (an output that is not a JSON object is wrapped as {"output": ..., "decision": ...})."""
        if not isinstance(output, Decided):
            return self.output_schema.to_jsonable(output)
        body = self.output_schema.to_jsonable(output.output)
        if output.decision is None:
            return body
        if isinstance(body, dict):
            return {**body, "decision": output.decision}
        return {"output": body, "decision": output.decision}

    def _checked(self, value: Any) -> Any:
        if isinstance(value, Decided):
            value.output = self.output_schema.validate(value.output)
            return value
        return self.output_schema.validate(value)

    def _validate_output(self, value: Any) -> Any:
        try:
            return self._checked(value)
        except ShipwayError as err:
            return err

    @staticmethod
    def _one_isolated(stage: Stage, value: Any, request: Any) -> Any:
        if isinstance(value, ShipwayError):
            return value
        try:
            return stage.one(value, request)
        except ShipwayError as err:
            return err
        except Exception as err:
            return PredictError(stage.name, err)
