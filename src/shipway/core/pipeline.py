"""Pipeline: input schema -> stages -> predict -> stages -> output schema.

The same object serves HTTP (through `parse`, `run_items`, `render`), runs one
input in-process with a full trace (`trace`), and runs datasets or logged
traffic offline (`run_batch`; batch scoring's `parse_many` and `run_columns`, which
use a stage's column form where it has one). Nothing here knows about HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from shipway.core.decided import Decided
from shipway.core.schema import Schema
from shipway.core.stage import Stage
from shipway.core.trace import StageRecord, Trace
from shipway.errors import OutputError, PredictError, ShipwayError

if TYPE_CHECKING:
    from shipway.core.answer_columns import AnswerColumns, ColumnCheck

__all__ = ["ColumnRun", "Decided", "Pipeline", "any_of"]

logger = logging.getLogger("shipway.core")  # Decided lives in core.decided; re-exported here


def any_of(values: list[Any], kind: type) -> bool:
    """Whether any of `values` is a `kind`: one pass over their types in C, then one check a type."""
    return any(issubclass(t, kind) for t in set(map(type, values)))


class ColumnRun(NamedTuple):
    """What `Pipeline.run_columns` returns (see there)."""

    values: list[Any]
    columns: Any
    places: list[int]
    answers: AnswerColumns | None = None


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
        self._column_check: ColumnCheck | None = None  # made on the first column answers
        self._columns_failed = False  # predict_columns raised once: said once, in the log

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
        values = self._run_stages(self.stages, list(items), items)
        return [v if isinstance(v, ShipwayError) else self._validate_output(v) for v in values]

    def run_columns(self, items: list[Any]) -> ColumnRun:
        """`run_items` for offline batches (batch scoring), over columns where the stages have
        column forms. The predict stage's (the service's `predict_columns`, when only the rules
        follow it) answers the batch as columns, checked against the output schema
        (core/answer_columns.py); the rules stage's decides the batch over columns instead of
        building an answer object per item.

        `values` are the outputs, through the output schema (a failure in its item's place; None
        where the item's output is in `answers`); `columns` what the rules' column form returned,
        None when it did not run; `places` the items the column forms ran on, in their order;
        `answers` the column answers (AnswerColumns, one row per place), None when predict_columns
        did not run."""
        at = next((i for i, s in enumerate(self.stages) if s.kind == "predict"), -1)
        tail = self.stages[at + 1 :]
        if at >= 0 and self.stages[at].columns is not None and all(s.kind == "rules" for s in tail):
            return self._answer_columns(items, at)
        return self._rule_columns(items)

    def _answer_columns(self, items: list[Any], at: int) -> ColumnRun:
        """`run_columns` with the predict stage's column form (see there)."""
        values = self._run_stages(self.stages[:at], list(items), items)
        failed = any_of(values, ShipwayError)
        places = (
            [i for i, v in enumerate(values) if not isinstance(v, ShipwayError)] if failed else list(range(len(values)))
        )
        if not places:
            return ColumnRun(values, None, [])
        requests = [items[i] for i in places] if failed else items
        try:
            raw = self.stages[at].columns([values[i] for i in places] if failed else values, requests)  # type: ignore[misc]
        except Exception as exc:  # the row path finds the items that fail and answers the others
            if not self._columns_failed:
                self._columns_failed = True
                logger.warning(
                    "predict_columns raised %s: %s; the batches it fails on are answered row by row, which is "
                    "slower. Fix predict_columns (`shipway check` compares it with predict).",
                    type(exc).__name__,
                    exc,
                )
            return self._rule_columns(items)
        if self._column_check is None:
            from shipway.core.answer_columns import ColumnCheck  # numpy and pyarrow: batch scoring's

            self._column_check = ColumnCheck(self.output_schema)
        answers = self._column_check.check(raw, len(places))
        rules = self.stages[at + 1] if at + 1 < len(self.stages) else None
        if not answers.checked:  # the answers' values go on as predict_batch would give them
            for i, answer in zip(places, answers.dicts(range(len(places))), strict=True):
                values[i] = answer
            return (
                self._rule_columns(items, values)
                if rules is not None
                else ColumnRun(
                    [v if isinstance(v, ShipwayError) else self._validate_output(v) for v in values], None, []
                )
            )
        decided = rules.columns(answers, requests) if rules is not None and rules.columns is not None else None
        if rules is not None and decided is None:  # no column form: every row through the rules' row form
            live = answers.rows(range(len(places)))
            for i, value in zip(places, self._run_stages([rules], live, requests), strict=True):
                values[i] = value if isinstance(value, ShipwayError) else self._validate_output(value)
            return ColumnRun(values, None, [])
        by_row = dict(decided.rows) if decided is not None else {}
        if failed:
            for i in places:
                values[i] = None
        else:
            values = [None] * len(values)
        for j, one in by_row.items():
            values[places[j]] = self._validate_output(one)
        # A row whose values break the output type: the row path's error for it, unless the rules
        # gave it another answer (above).
        bad = sorted(j for j in answers.bad if j not in by_row)
        for j, value in zip(bad, answers.dicts(bad), strict=True):
            values[places[j]] = self._validate_output(value)
        return ColumnRun(values, decided, places, answers)

    def _rule_columns(self, items: list[Any], answered: list[Any] | None = None) -> ColumnRun:
        """`run_columns` with the rules stage's column form alone, from the first stage, or with
        `answered` (the predict stage's outputs, a failure in its item's place) from the rules."""
        last = self.stages[-1] if self.stages else None
        if last is None or last.columns is None:
            if answered is None:
                return ColumnRun(self.run_items(items), None, [])
            values = self._run_stages([last] if last is not None else [], answered, items)
            return ColumnRun([v if isinstance(v, ShipwayError) else self._validate_output(v) for v in values], None, [])
        values = answered if answered is not None else self._run_stages(self.stages[:-1], list(items), items)
        failed = any_of(values, ShipwayError)
        places = (
            [i for i, v in enumerate(values) if not isinstance(v, ShipwayError)] if failed else list(range(len(values)))
        )
        live = [values[i] for i in places] if failed else values
        columns = last.columns(live, [items[i] for i in places] if failed else items) if places else None
        if columns is None:
            values = self._run_stages([last], values, items)
            return ColumnRun([v if isinstance(v, ShipwayError) else self._validate_output(v) for v in values], None, [])
        answers = columns.answers
        if not any_of(answers, Decided):
            checked = self.output_schema.validate_many(answers)
            if not failed:
                return ColumnRun(checked, columns, places)
            for i, value in zip(places, checked, strict=True):
                values[i] = value
            return ColumnRun(values, columns, places)
        plain = [j for j, answer in enumerate(answers) if not isinstance(answer, Decided)]
        for j, value in zip(plain, self.output_schema.validate_many([answers[j] for j in plain]), strict=True):
            values[places[j]] = value
        for j, answer in enumerate(answers):
            if isinstance(answer, Decided):
                values[places[j]] = self._validate_output(answer)
        return ColumnRun(values, columns, places)

    def _run_stages(self, stages: list[Stage], values: list[Any], requests: list[Any]) -> list[Any]:
        failed = any_of(values, ShipwayError)
        for stage in stages:
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
        return values

    def replay(self, stage: str, values: list[Any], requests: list[Any]) -> list[Any]:
        """Offline replay: run logged `values` (what reached `stage`) through the stages from
        `stage` onward, each with its logged request; a failure stays in its item's place. The
        outputs are returned as the last stage left them (the output schema is not applied)."""
        names = [s.name for s in self.stages]
        if stage not in names:
            raise ShipwayError(f"no stage {stage!r} to replay from; the stages are {', '.join(names)}")
        out: list[Any] = list(values)
        for step in self.stages[names.index(stage) :]:
            try:
                out = list(step.many(out, requests))
            except Exception:  # isolate: one bad row must not fail the others
                out = [self._one_isolated(step, v, r) for v, r in zip(out, requests, strict=True)]
        return out

    def without(self, *names: str) -> Pipeline:
        """The same pipeline with the named stages left out (for counterfactual reruns)."""
        stages = [s for s in self.stages if s.name not in names]
        return Pipeline(stages, self.input_schema, self.output_schema, self.ids)

    # -- the schema edges ------------------------------------------------------

    def parse(self, item: Any) -> Any:
        """Apply the input schema. Bytes are JSON, parsed and validated in one pass;
        a str is JSON too unless the input type is itself str."""
        if isinstance(item, bytes) or (isinstance(item, str) and self.input_schema.hint is not str):
            return self.input_schema.validate_json(item)
        return self.input_schema.validate(item)

    def parse_many(self, items: list[Any]) -> list[Any]:
        """`parse` over a batch, a failure (its InputError) in its item's place: the items that
        `parse` validates as they are go through the input schema in one call."""
        kinds = set(map(type, items))  # one pass in C, then one check a type
        if any(issubclass(t, bytes) or (issubclass(t, str) and self.input_schema.hint is not str) for t in kinds):
            out: list[Any] = []
            for item in items:
                try:
                    out.append(self.parse(item))
                except ShipwayError as err:
                    out.append(err)
            return out
        return self.input_schema.validate_many(items)

    def render(self, output: Any) -> bytes:
        """The JSON body of one output; a decided output carries its `decision`."""
        if not isinstance(output, Decided):
            return self.output_schema.dump_json(output)
        body = self.output_schema.dump_json(output.output)
        if output.output is output.model_output:
            output.model_json = body  # the log wants these bytes too
        if output.decision is None:
            return body
        if body[:1] == b"{" and body[-1:] == b"}":
            # Splice the decision into the object: no second pass over the output.
            joint = b"," if len(body) > 2 else b""
            output.decision_json = orjson.dumps(output.decision)  # the log wants these bytes too
            return body[:-1] + joint + b'"decision":' + output.decision_json + b"}"
        return orjson.dumps(self.jsonable(output))

    def render_model_output(self, output: Any) -> bytes:
        """The JSON of what the model side returned, before any rules."""
        if isinstance(output, Decided):
            return output.model_json or self.output_schema.dump_json(output.model_output)
        return self.output_schema.dump_json(output)

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
