"""Diagnosis: from a failing case's traces, the stage where the expected result was lost.

Two kinds of evidence, strongest first:

- counterfactuals: the case is run again with each stage that is not `predict`
  left out; a stage whose removal makes the case pass is the cause;
- the traces: the expectation is looked at after each stage from `predict` on,
  so a result the model got right and a later stage (or rule) changed is found
  where it changed, and a result the model got wrong is described by where the
  model ranked the expected item.

Traces are the JSON form (`Trace.to_dict()`, or what POST /explain answers), so
the same code serves in-process runs, live services and the explain endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipway.expect.cases import Case, Failed
from shipway.expect.expectations import Expectation, ItemInTopK, ProbabilityAtLeast, first_failing, label_seen
from shipway.expect.fields import MISSING, Fields, get_path, percent, rank_of, shorten

__all__ = ["SKIPPABLE", "Diagnosis", "diagnose"]

# The kinds of stage a counterfactual may leave out: everything but the model itself.
SKIPPABLE = ("before", "after", "rules")

Rerun = Callable[[str, list[Any]], list[Any] | None]


@dataclass
class Diagnosis:
    """Why a case failed. `cause` is one of: before-stage, model, after-stage, rules,
    output-schema, stage-error, input, missing-field, not-reproduced, unknown."""

    cause: str
    stage: str | None
    summary: str
    details: list[str] = field(default_factory=list)
    around: list[dict[str, Any]] = field(default_factory=list)  # stage records: before, at, after `stage`
    without: dict[str, Any] | None = None  # the counterfactual that passed: {"stage", "kind", "seen"}
    ids: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "stage": self.stage,
            "summary": self.summary,
            "details": list(self.details),
            "around": list(self.around),
            "without": self.without,
            "ids": dict(self.ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnosis:
        return cls(
            cause=str(data.get("cause", "unknown")),
            stage=data.get("stage"),
            summary=str(data.get("summary", "")),
            details=[str(d) for d in data.get("details") or []],
            around=list(data.get("around") or []),
            without=data.get("without"),
            ids=dict(data.get("ids") or {}),
        )

    def lines(self, width: int = 100) -> list[str]:
        """The diagnosis as indented text lines, for terminals and JUnit failure bodies."""
        out = [f"cause: {self.summary}"]
        out += [f"  {d}" for d in self.details]
        if self.around:
            out.append("stages around it:")
            for record in self.around:
                mark = ">" if record.get("stage") == self.stage else " "
                out.append(
                    f" {mark} {record.get('stage')} ({record.get('kind')}): "
                    f"{shorten(record.get('input'), width // 2 - 10)} -> {shorten(record.get('output'), width // 2)}"
                )
        return out


# -- helpers over trace dicts --------------------------------------------------


def _stages(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(trace.get("stages") or [])


def final_output(trace: Mapping[str, Any]) -> Any:
    """The trace's output, or Failed when a stage raised."""
    stages = _stages(trace)
    error = next((s for s in stages if s.get("error")), None)
    if error is not None:
        return Failed(f"stage {error['stage']!r}: {error['error']}")
    return stages[-1].get("output") if stages else Failed("the trace has no stages")


def output_of(record: Mapping[str, Any]) -> Any:
    """A stage's output as the caller would see it. A rules stage returns a decided output
    (`Decided`: output, decision, model_output, shadow), which the answer shows as the
    output with its `decision` field."""
    out = record.get("output")
    if isinstance(out, Mapping) and set(out) == {"output", "decision", "model_output", "shadow"}:
        body = out["output"]
        if out["decision"] is None:  # only shadow rules ran: the answer is the output alone
            return body
        if isinstance(body, Mapping):
            return {**body, "decision": out["decision"]}
        return {"output": body, "decision": out["decision"]}
    return out


def around(trace: Mapping[str, Any], name: str | None) -> list[dict[str, Any]]:
    stages = _stages(trace)
    for i, record in enumerate(stages):
        if record.get("stage") == name:
            return stages[max(0, i - 1) : i + 2]
    return []


def skippable(trace: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(s["stage"], s["kind"]) for s in _stages(trace) if s.get("kind") in SKIPPABLE]


def describe_change(before: Any, after: Any) -> str:
    """What a stage did to a value: which fields, and how."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        parts = [
            _change(str(k), before.get(k, MISSING), after.get(k, MISSING))
            for k in dict.fromkeys([*before, *after])
            if before.get(k, MISSING) != after.get(k, MISSING)
        ]
        return "; ".join(parts) or "no visible change"
    return _change("the value", before, after)


def _change(name: str, a: Any, b: Any) -> str:
    if a is MISSING:
        return f"{name} added: {shorten(b, 60)}"
    if b is MISSING:
        return f"{name} removed (was {shorten(a, 60)})"
    if isinstance(a, str) and isinstance(b, str):
        if a.startswith(b):
            return f"{name} cut from {len(a)} to {len(b)} characters, dropping {_ends(a[len(b) :], 90)}"
        if len(a) != len(b):
            return f"{name} {len(a)} -> {len(b)} characters: {shorten(a, 50)} -> {shorten(b, 50)}"
    return f"{name} {shorten(a, 50)} -> {shorten(b, 50)}"


def _ends(text: str, limit: int) -> str:
    # The end of a cut text is often what mattered (the intent came last), so keep both ends.
    if len(text) <= limit:
        return repr(text)
    half = (limit - 1) // 2
    return repr(text[:half] + "…" + text[-half:])


def _shown(value: Any) -> str:
    if value is MISSING:
        return "absent"
    if value is None:
        return "not ranked"
    if isinstance(value, float):
        return f"{value:.3f}"
    return shorten(value, 60)


def _fired(output: Any) -> list[str]:
    fired = get_path(output, "decision.fired")
    if not isinstance(fired, list):
        return []
    names = []
    for rule in fired:
        name = (
            rule
            if isinstance(rule, str)
            else (rule.get("name") or rule.get("id"))
            if isinstance(rule, Mapping)
            else None
        )
        if name:
            names.append(str(name))
    return names


def model_sentence(e: Expectation, output: Any, fields: Fields) -> str:
    """What the model did with the expected item: where it ranked it, what it chose."""
    subject = e.subject()
    label = fields.label_of(output)
    p = fields.probability_of(output)
    chose = f"it chose {label!r}{percent(None if p is MISSING else p)}" if label is not MISSING else ""
    if isinstance(e, ProbabilityAtLeast):
        try:
            p_seen = e.probability(output, fields)
        except LookupError as err:
            return f"the model's output fails it: {err}"
        whose = label if e.label is None else e.label
        if p_seen is not None:
            return f"the model gave {whose!r} probability {p_seen:.2f}, below {e.value:g}"
    if subject is None:
        return f"the model's output fails it: {e.check(output, fields).message}"
    ranked_list = isinstance(e, ItemInTopK)
    try:
        if isinstance(e, ItemInTopK):
            pairs = fields.items(output, e.list, e.by)
            what = f"the {len(pairs)} items of {e.list or fields.path('topk', output) or 'its ranked list'}"
        else:
            pairs = fields.ranking(output)
            what = f"its top {len(pairs)}"
    except LookupError as err:
        return f"the model's output fails it: {err}"
    if not chose and pairs:  # a ranking with no single label: say what the model put first
        k = getattr(e, "k", None) or 3
        top = pairs[: min(max(k, 1), 5)]
        chose = f"it put first {', '.join(f'{item!r}{percent(p_item)}' for item, p_item in top)}"
    position, prob = rank_of(pairs, subject)
    if position is None:
        return f"the model did not rank {subject!r} in {what}; {chose}".rstrip("; ")
    if position == 1 and not ranked_list:
        return f"the model ranked {subject!r} first{percent(prob)}, but {e.check(output, fields).message}"
    return f"the model ranked {subject!r} at position {position} of {what}{percent(prob)}; {chose}".rstrip("; ")


# -- the diagnosis -------------------------------------------------------------


def diagnose(case: Case, fields: Fields, traces: Sequence[Mapping[str, Any]], rerun: Rerun | None = None) -> Diagnosis:
    """Why `case` failed, from one trace per input (`case.inputs` order).

    `rerun(stage, inputs)` runs the inputs with that stage left out and returns
    their outputs (or Failed); without it, no counterfactuals are tried.
    """
    ids = dict(traces[0].get("ids") or {}) if traces else {}
    for i, trace in enumerate(traces):
        broken = next((s for s in _stages(trace) if s.get("error")), None)
        if broken is not None:
            which = "the case input" if i == 0 else f"variant {i}"
            if broken.get("stage") == "input":
                return Diagnosis("input", "input", f"{which} does not match the service's input schema: {broken['error']}",
                                 around=around(trace, "input"), ids=ids)  # fmt: skip
            return Diagnosis(
                "stage-error",
                broken.get("stage"),
                f"stage {broken.get('stage')!r} raised on {which}: {broken['error']}",
                around=around(trace, broken.get("stage")),
                ids=ids,
            )
    outputs = [final_output(t) for t in traces]
    if all(c.passed for c in case.evaluate(outputs, fields)):
        return Diagnosis(
            "not-reproduced",
            None,
            "the case passed when run again with a trace: the service's answers vary between runs "
            "(a model or rules update in between, or randomness)",
            ids=ids,
        )
    without = _counterfactual(case, fields, traces, rerun) if rerun is not None else None
    failing = first_failing(case.expect, outputs[0], fields)
    if failing is not None:
        diagnosis = _single(failing[0], traces[0], fields, without)
    else:
        diagnosis = _behaviour(case, traces, fields, without)
    diagnosis.ids = ids
    return diagnosis


def _counterfactual(
    case: Case, fields: Fields, traces: Sequence[Mapping[str, Any]], rerun: Rerun
) -> dict[str, Any] | None:
    for name, kind in skippable(traces[0]):
        try:
            outputs = rerun(name, case.inputs)
        except Exception:  # a pipeline that cannot run without this stage proves nothing
            continue
        if outputs is None or any(isinstance(o, Failed) for o in outputs):
            continue
        checks = case.evaluate(outputs, fields)
        if all(c.passed for c in checks):
            seen = "; ".join(c.message for c in checks)
            return {"stage": name, "kind": kind, "seen": seen}
    return None


def _predict_index(stages: list[dict[str, Any]]) -> int:
    return next((i for i, s in enumerate(stages) if s.get("kind") == "predict"), len(stages) - 1)


def _before_changes(stages: list[dict[str, Any]], upto: int) -> list[tuple[str, str]]:
    return [
        (s["stage"], describe_change(s.get("input"), s.get("output")))
        for s in stages[1:upto]
        if s.get("kind") == "before" and s.get("input") != s.get("output")
    ]


def _single(e: Expectation, trace: Mapping[str, Any], fields: Fields, without: dict[str, Any] | None) -> Diagnosis:
    stages = _stages(trace)
    pi = _predict_index(stages)
    seen = [(s, e.observe(output_of(s), fields)) for s in stages[pi:]]
    final = seen[-1][1]
    origin = len(seen) - 1
    while origin > 0 and seen[origin - 1][1] == final:
        origin -= 1
    changes = _before_changes(stages, pi)
    details = [f"stage {name!r} changed the input before the model: {what}" for name, what in changes]
    if without is not None:
        details.append(f"without stage {without['stage']!r} the case passes: {without['seen']}")
    if final is MISSING and origin == 0:
        message = e.check(output_of(stages[-1]), fields).message
        return Diagnosis("missing-field", None, f"no stage produced what `{e.describe()}` looks at: {message}", details)
    record = seen[origin][0]
    name, kind = record.get("stage"), record.get("kind")
    if kind == "predict":
        if without is not None and without["kind"] == "before":
            change = dict(changes).get(without["stage"], "")
            summary = (
                f"the input was changed by stage {without['stage']!r} before the model ({change}); "
                f"without it the case passes"
            )
            model = model_sentence(e, output_of(record), fields)
            others = [d for d in details if not d.startswith(f"stage {without['stage']!r} changed")]
            return Diagnosis(
                "before-stage",
                without["stage"],
                summary,
                [f"with it, {model}", *others],
                around(trace, without["stage"]),
                without,
            )
        return Diagnosis(
            "model", name, model_sentence(e, output_of(record), fields), details, around(trace, name), without
        )
    was = seen[origin - 1][1]
    if was is MISSING:
        change = f"set {e.watching(fields)} to {_shown(final)}"
    else:
        change = f"changed {e.watching(fields)} from {_shown(was)} to {_shown(final)}"
    details = [d for d in details if not d.startswith("stage ") or "before the model" not in d]
    if kind == "rules":
        label = fields.label_of(output_of(seen[origin - 1][0]))
        if label is not MISSING:
            details.insert(0, f"the rules saw the model's answer: {label_seen(output_of(seen[origin - 1][0]), fields)}")
        fired = _fired(output_of(record))
        if fired:
            who = f"rule {', '.join(map(repr, fired))}"
            if was is MISSING:
                summary = f"{who} {change}"
            else:
                summary = f"{who} overrode {e.watching(fields)}: {_shown(was)} -> {_shown(final)}"
        else:
            summary = f"the rules stage {name!r} {change}, with no rule firing (its default decision)"
        cause = "rules"
    elif kind == "output":
        summary = f"the output schema {change}"
        cause = "output-schema"
    else:
        summary = f"stage {name!r} after the model {change}"
        cause = "after-stage"
    at_model = e.check(output_of(stages[pi]), fields)
    if at_model.passed:
        details.insert(0, f"the model's own output passed: {at_model.message}")
    return Diagnosis(cause, name, summary, details, around(trace, name), without)


def _behaviour(
    case: Case, traces: Sequence[Mapping[str, Any]], fields: Fields, without: dict[str, Any] | None
) -> Diagnosis:
    assert case.behaviour is not None  # only cases whose failure is not in `expect` get here
    first = _stages(traces[0])
    pi = _predict_index(first)
    names = [(s.get("stage"), s.get("kind")) for s in first[pi:]]
    verdicts = []
    for name, _kind in names:
        outputs = []
        for trace in traces:
            record = next((s for s in _stages(trace) if s.get("stage") == name), None)
            outputs.append(output_of(record) if record else Failed("stage missing"))
        checks = case.behaviour.evaluate(outputs[0], outputs[1:], fields)
        verdicts.append((name, checks[0]))
    details = []
    for i, trace in enumerate(traces):
        stages = _stages(trace)
        for name, what in _before_changes(stages, _predict_index(stages)):
            which = "the case input" if i == 0 else f"variant {i}"
            details.append(f"stage {name!r} changed {which} before the model: {what}")
    if without is not None:
        details.append(f"without stage {without['stage']!r} the case passes: {without['seen']}")
    if without is not None and without["kind"] == "before":
        return Diagnosis(
            "before-stage",
            without["stage"],
            f"the inputs were changed by stage {without['stage']!r} before the model; without it the case passes",
            details,
            around(traces[-1], without["stage"]),
            without,
        )
    if not verdicts[0][1].passed:
        return Diagnosis(
            "model",
            "predict",
            f"the model's outputs fail it: {verdicts[0][1].message}",
            details,
            around(traces[0], "predict"),
            without,
        )
    for (name, check), (_, kind) in zip(verdicts, names, strict=True):
        if not check.passed:
            cause = "rules" if kind == "rules" else ("output-schema" if kind == "output" else "after-stage")
            summary = f"the model's outputs pass it, but stage {name!r} changed them: {check.message}"
            return Diagnosis(cause, name, summary, details, around(traces[0], name), without)
    return Diagnosis("unknown", None, "no stage could be blamed from the traces", details, [], without)
