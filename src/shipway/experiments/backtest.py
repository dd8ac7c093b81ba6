"""Rule backtests: replay logged predictions through the current and the proposed rules.

The model is not called: the prediction log keeps each request and the model's
output before any rules, so the log replays from the pipeline's `rules` stage
onward through the same stage serving runs (rules/live.py), in its batch form:
the current side is what serves now, with any shadow or canary rules beside the
live ones, decided as serving decides them, `meta.time` the logged time. Rows the
service answered in mode off or shadow (the log's `mode` column) are skipped. The report counts the decisions that change, from which queue to
which, and keeps a few examples of each change: the earliest ones, by time and
request id, so that reports of parts of the log merge into the report of the
whole (`BacktestReport.merge`) and a run split over worker processes or a Ray
cluster (`BacktestJob`) answers exactly as one pass does.

Given the outcomes that came back for the replayed requests (feedback: the true `label`, the
right `queue`), the report also scores both rule sets on them (rules/scores.py): how often
each one's answer was right, how many wrong answers it sent for review, how many got through.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import reduce
from itertools import compress, islice
from operator import attrgetter, itemgetter, ne
from typing import Any

import orjson

from shipway.common.merging import greatest, least, merge_fields
from shipway.core.collector import collector_paused
from shipway.rules import Decision, RuleSet, load_rules
from shipway.rules.live import META_SCHEMA, Active, LiveRules, rules_stage
from shipway.rules.scores import DecisionScore, queue_totals
from shipway.store import PredictionRecord
from shipway.store.outcomes import OutputReader

__all__ = ["BacktestJob", "BacktestReport", "backtest", "merged", "replay"]

NO_RULES = "(no rules)"


@dataclass
class BacktestReport:
    """What changes if `proposed` replaces `current` on the replayed traffic."""

    current_version: str
    proposed_version: str
    total: int = 0
    changed: int = 0
    skipped: int = 0  # rows logged in service mode off or shadow, or whose JSON could not be read
    queues: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    review: Counter[str] = field(default_factory=Counter)  # "added", "removed"
    fallback: Counter[str] = field(default_factory=Counter)
    overrides: int = 0  # decisions whose `set` changed
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None
    limit: int = 3  # examples kept per change
    # The top-level fields either rule set reads (`input.amount`): examples show them first.
    reads: list[str] = field(default_factory=list)
    # Scores on the outcomes that came back (None: no outcomes were given to score with).
    current_score: DecisionScore | None = None
    proposed_score: DecisionScore | None = None
    changed_scored: int = 0  # changed decisions whose outcome came back

    def merge(self, other: BacktestReport) -> BacktestReport:
        """The report of both parts of the log, as one pass over all of it would give."""
        if (self.current_version, self.proposed_version) != (other.current_version, other.proposed_version):
            raise ValueError("only reports of the same two rule sets merge")
        examples = {
            key: sorted([*self.examples.get(key, []), *other.examples.get(key, [])], key=_when)[: self.limit]
            for key in {**self.examples, **other.examples}
        }
        # Counts and counters add, scores merge (common/merging.py); the rest is given here.
        return merge_fields(
            self,
            other,
            examples={key: examples[key] for key in sorted(examples)},
            first_ts=least(self.first_ts, other.first_ts),
            last_ts=greatest(self.last_ts, other.last_ts),
            limit=self.limit,
            reads=self.reads,
        )

    @property
    def transitions(self) -> list[tuple[str | None, str | None, int]]:
        """Queue changes, most frequent first (unchanged queues left out)."""
        return [(a, b, n) for (a, b), n in self.queues.most_common() if a != b]

    def to_dict(self) -> dict[str, Any]:
        return {
            "current_version": self.current_version,
            "proposed_version": self.proposed_version,
            "total": self.total,
            "changed": self.changed,
            "skipped": self.skipped,
            "window": [self.first_ts, self.last_ts],
            "queue_changes": [{"from": a, "to": b, "count": n} for a, b, n in self.transitions],
            "queue_totals": {
                "current": queue_totals(self.queues, 0),
                "proposed": queue_totals(self.queues, 1),
            },
            "review": dict(self.review),
            "fallback": dict(self.fallback),
            "overrides_changed": self.overrides,
            "examples": self.examples,
            "reads": self.reads,
            "outcomes": None
            if self.current_score is None or self.proposed_score is None
            else {
                "changed_scored": self.changed_scored,
                "current": self.current_score.to_dict(),
                "proposed": self.proposed_score.to_dict(),
            },
        }


def backtest(
    records: Iterable[PredictionRecord],
    current: RuleSet | Active | None,
    proposed: RuleSet | Active,
    *,
    examples: int = 3,
    outcomes: Mapping[str, Mapping[str, Any]] | None = None,
    reader: OutputReader | None = None,
) -> BacktestReport:
    """Decide every record with both rule sets and compare; `current` None means no rules today.
    With `outcomes` (`{request_id: {"label": ..., "queue": ...}}`, store.feedback.recorded_outcomes)
    both sides are scored on them, outputs read by `reader`."""
    rows = ((r.request_id, r.ts, r.inputs, r.outputs, r.decision, getattr(r, "mode", None)) for r in records)
    return replay(rows, current, proposed, examples=examples, outcomes=outcomes, reader=reader)


# request_id, ts, inputs, outputs, decision (JSON text or parsed), mode (None: logged before the column)
Row = tuple[str, float, Any, Any, Any, str | None]
_CHUNK = 2048  # rows decided at once (milliseconds with the collector paused)


class _Side:
    """One side of a backtest: the `rules` stage serving builds (rules_stage over a LiveRules) on
    `active`, run through its batch form."""

    def __init__(self, active: Active) -> None:
        self.live = LiveRules()
        self.live.swap(active)
        self.stage = rules_stage(self.live)
        self.version = active.versions[0] or NO_RULES
        self.reads = [field for rules in (active.live, active.candidate) if rules is not None for field in rules.reads]

    def decisions(self, outputs: list[Any], requests: list[Any], times: list[float]) -> list[Decision]:
        """The decision the stage takes for each row, each at its logged time; an empty one where
        no rules decide. Nothing is answered offline, so no answer is built (`LiveRules.decisions`)."""
        return self.live.decisions(outputs, requests, times, empty=_EMPTY)  # type: ignore[return-value]


_EMPTY = Decision()


def replay(
    rows: Iterable[Row],
    current: RuleSet | Active | None,
    proposed: RuleSet | Active,
    *,
    examples: int = 3,
    outcomes: Mapping[str, Mapping[str, Any]] | None = None,
    reader: OutputReader | None = None,
) -> BacktestReport:
    """The backtest of logged rows whose JSON columns are text (the store) or already parsed (Parquet)."""
    old, new = _Side(Active.of(current)), _Side(Active.of(proposed))
    report = BacktestReport(old.version, new.version, limit=examples)
    report.reads = list(dict.fromkeys([*new.reads, *old.reads]))
    scoring = None
    if outcomes is not None:
        report.current_score, report.proposed_score = DecisionScore(), DecisionScore()
        if outcomes:  # none came back: nothing to look up per row
            scoring = (outcomes, reader or OutputReader())
    parsed = _parsed(rows, report)
    while True:
        # A chunk's parsed rows and decisions are thousands of new containers, none in a cycle: the
        # collector waits while a chunk is read and decided (milliseconds), and they are freed
        # before it runs again, so it never scans them.
        with collector_paused():
            if not _compare(report, old, new, parsed, examples, scoring):
                break
    report.examples = {key: report.examples[key] for key in sorted(report.examples)}
    return report


@dataclass
class _Chunk:
    """Rows to decide at once, column by column."""

    ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)

    def adders(self) -> tuple[Any, Any, Any, Any]:
        return self.ids.append, self.times.append, self.requests.append, self.outputs.append


def _parsed(rows: Iterable[Row], report: BacktestReport) -> Iterator[tuple[str, float, Any, Any]]:
    """(request id, ts, request, output) of each row the rules saw; the others counted as skipped."""
    loads = orjson.loads
    for request_id, ts, inputs, outputs, decision, mode in rows:
        if (mode != "on") if mode is not None else _answered_default(mode, decision):
            report.skipped += 1  # logged in service mode off or shadow: not the answer the rules saw
            continue
        try:
            request = loads(inputs) if isinstance(inputs, (bytes, str)) else inputs
            output = loads(outputs) if isinstance(outputs, (bytes, str)) else outputs
        except orjson.JSONDecodeError:
            report.skipped += 1
            continue
        yield request_id, ts, request, output


Scoring = tuple[Mapping[str, Mapping[str, Any]], OutputReader] | None


def _compare(
    report: BacktestReport, old: _Side, new: _Side, parsed: Iterator[Any], examples: int, scoring: Scoring
) -> bool:
    """Decide the next chunk of rows on both sides and count what changes; False when none was left."""
    chunk = _Chunk()
    add_id, add_time, add_request, add_output = chunk.adders()
    for request_id, ts, request, output in islice(parsed, _CHUNK):
        add_id(request_id)
        add_time(ts)
        add_request(request)
        add_output(output)
    if not chunk.ids:
        return False
    _compare_chunk(report, old, new, chunk, examples, scoring)
    return True


def _compare_chunk(
    report: BacktestReport, old: _Side, new: _Side, chunk: _Chunk, examples: int, scoring: Scoring
) -> None:
    requests, outputs, times = chunk.requests, chunk.outputs, chunk.times
    before = old.decisions(outputs, requests, times)
    after = new.decisions(outputs, requests, times)
    keys_a, keys_b = list(map(_KEY, before)), list(map(_KEY, after))
    report.total += len(times)
    first, last = min(times), max(times)
    report.first_ts = first if report.first_ts is None else min(report.first_ts, first)
    report.last_ts = last if report.last_ts is None else max(report.last_ts, last)
    # Counted and compared column by column in C; only the rows that change are looked at here.
    report.queues.update(zip(map(_QUEUE, keys_a), map(_QUEUE, keys_b), strict=True))
    changed = list(compress(range(len(keys_a)), map(ne, keys_a, keys_b)))
    if scoring is not None:
        _score(report, chunk, before, after, set(changed), scoring)
    for i in changed:
        a, b = before[i], after[i]
        queue_a, queue_b = a.queue, b.queue
        report.changed += 1
        if a.review != b.review:
            report.review["added" if b.review else "removed"] += 1
        if a.fallback != b.fallback:
            report.fallback["added" if b.fallback else "removed"] += 1
        if a.set != b.set:
            report.overrides += 1
        key = f"{queue_a} -> {queue_b}" if queue_a != queue_b else "same queue, other change"
        kept = report.examples.setdefault(key, [])
        request_id, ts = chunk.ids[i], times[i]
        when = (ts, request_id)
        if len(kept) < examples or when < _when(kept[-1]):
            # The earliest examples by time, then request id: the same whichever part of the log ran.
            example = {
                "request_id": request_id,
                "ts": ts,
                "input": requests[i],
                "output": outputs[i],
                "current": _brief(a),
                "proposed": _brief(b),
            }
            kept.insert(bisect.bisect(kept, when, key=_when), example)
            del kept[examples:]


def _score(
    report: BacktestReport,
    chunk: _Chunk,
    before: list[Decision],
    after: list[Decision],
    changed: set[int],
    scoring: tuple[Mapping[str, Mapping[str, Any]], OutputReader],
) -> None:
    """Both sides scored on the outcomes that came back for the chunk's requests."""
    outcomes, reader = scoring
    current, proposed = report.current_score, report.proposed_score
    assert current is not None and proposed is not None
    for i, request_id in enumerate(chunk.ids):
        known = outcomes.get(request_id)
        if known is None:
            continue
        output = chunk.outputs[i]
        for score, d in ((current, before[i]), (proposed, after[i])):
            score.add(reader, output, d.queue, d.review, d.fallback, d.set, known)
        report.changed_scored += i in changed


# What a backtest compares of two decisions (a change in any of them is counted), and the queue.
_KEY = attrgetter("queue", "review", "fallback", "set")
_QUEUE = itemgetter(0)


@dataclass
class BacktestJob:
    """A backtest for an offline engine (shipway.engine): each worker compiles both rule sets
    once, replays its batches of the log, and the partial reports merge (`merged`)."""

    COLUMNS = ("request_id", "ts", "service", "inputs", "outputs", "decision", "mode")  # what it reads of the log

    proposed: tuple[str, str]  # the rules' source and its file name
    current: tuple[str, str] | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    labels: list[str] | None = None
    examples: int = 3
    since: float | None = None  # rows logged before are left out
    until: float | None = None  # and rows logged at or after
    service: str | None = None  # rows of other services are left out
    # The rules beside the current ones, as serving runs them: (source, file name) and its options
    # (mode shadow or canary, canary, canary_key), from the rules history.
    candidate: tuple[str, str] | None = None
    candidate_options: dict[str, Any] = field(default_factory=dict)
    # The outcomes to score both sides on (`backtest`'s), and the reader of the outputs.
    outcomes: dict[str, dict[str, Any]] | None = None
    reader: OutputReader | None = None

    def setup(self) -> None:
        def compile(source: tuple[str, str]) -> RuleSet:
            text, filename = source
            return load_rules(
                text,
                input_schema=self.input_schema,
                output_schema=self.output_schema,
                labels=self.labels,
                filename=filename,
                meta_schema=META_SCHEMA,
            )

        self._proposed = compile(self.proposed)
        options = self.candidate_options
        self._current = Active(
            live=compile(self.current) if self.current is not None else None,
            candidate=compile(self.candidate) if self.candidate is not None else None,
            candidate_mode=str(options.get("mode", "shadow")),
            canary=float(options.get("canary") or 0.0),
            canary_key=options.get("canary_key"),
        )

    def rule_sets(self) -> tuple[Active, RuleSet]:
        """The compiled rules of both sides: the current ones (with any candidate beside them, as
        serving runs it) and the proposed ones. Compiled by `setup`, on first ask if not yet."""
        if not hasattr(self, "_proposed"):
            self.setup()
        return self._current, self._proposed

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}  # workers compile their own

    def __call__(self, rows: list[dict[str, Any]]) -> BacktestReport:
        since, until, service = self.since, self.until, self.service
        logged = (
            (r["request_id"], r["ts"], r["inputs"], r["outputs"], r.get("decision"), r.get("mode"))
            for r in rows
            if (since is None or r["ts"] >= since)
            and (until is None or r["ts"] < until)
            and (service is None or r.get("service", service) == service)
        )
        return replay(
            logged, self._current, self._proposed, examples=self.examples, outcomes=self.outcomes, reader=self.reader
        )

    def columns(self) -> tuple[str, ...]:
        """What it reads of the exported log: COLUMNS, and the typed columns its rules read."""
        from shipway.experiments.backtest_columns import job_columns

        return job_columns(self)

    def table(self, table: Any) -> BacktestReport:
        """An Arrow batch of the export, decided over columns where the rules allow
        (experiments/backtest_columns.py): the same report as `__call__` on its rows."""
        from shipway.experiments.backtest_columns import job_table

        return job_table(self, table)


def merged(parts: Iterator[BacktestReport] | Iterable[BacktestReport]) -> BacktestReport:
    """One report from the reports of the parts of a log."""
    return reduce(BacktestReport.merge, parts)


def _answered_default(mode: str | None, decision: Any) -> bool:
    """Whether the service answered `default` (modes off and shadow): the log's mode column says
    it; rows logged before the column (schema 8 and older) by their decision."""
    if mode is not None:
        return mode != "on"
    if decision is None:
        return False
    if isinstance(decision, bytes):
        return b'"answer":"default"' in decision
    if isinstance(decision, str):
        return '"answer":"default"' in decision
    return isinstance(decision, dict) and decision.get("answer") == "default"


def _when(example: dict[str, Any]) -> tuple[float, str]:
    return (example["ts"], example["request_id"])


def _brief(decision: Decision) -> dict[str, Any]:
    return {
        "queue": decision.queue,
        "review": decision.review,
        "review_reason": decision.review_reason,
        "fallback": decision.fallback,
        "set": decision.set,
        "fired": decision.fired,
    }
