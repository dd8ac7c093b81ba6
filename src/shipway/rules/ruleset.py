"""RuleSet: a checked, compiled rules file, and `load_rules` to make one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from shipway.core.collector import collector_paused
from shipway.errors import RulesError
from shipway.rules.codegen import generate
from shipway.rules.decision import Decision
from shipway.rules.diagnostics import Diagnostic, Diagnostics
from shipway.rules.loader import parse_spec
from shipway.rules.model import Rule, Spec
from shipway.rules.reach import analyse
from shipway.rules.spec_checks import Checker

__all__ = ["RuleSet", "load_rules"]

Decide = Callable[..., Decision]  # (request, output, meta=None)
DecideBatch = Callable[[Iterable[Any], Iterable[Any], Iterable[Any]], list[Decision]]  # (requests, outputs, metas)


class RuleSet:
    """Rules ready to run: `decide(request, output, meta)` returns a `Decision`.

    `decide` is the compiled function itself (no wrapper in between), so a
    call costs what the rules cost. Inputs are mappings (pydantic models are
    dumped first, which is slower: pass dicts on hot paths).
    """

    __slots__ = (
        "decide",
        "decide_batch",
        "default_answer",
        "filename",
        "names",
        "python",
        "reads",
        "reads_meta",
        "source",
        "version",
        "warnings",
    )

    def __init__(
        self,
        decide: Decide,
        *,
        version: str,
        source: str,
        filename: str,
        warnings: list[Diagnostic],
        default_answer: Any,
        names: list[str],
        python: str,
        decide_batch: DecideBatch,
        reads_meta: bool = True,
        reads: tuple[str, ...] = (),
    ) -> None:
        self.decide: Decide = decide
        # The batch form, compiled from the same rules: one call decides a batch.
        self.decide_batch: DecideBatch = decide_batch
        self.reads_meta = reads_meta  # False: the rules read no `meta.` field, so none need be made
        self.version = version
        self.source = source
        self.filename = filename
        self.warnings = warnings
        self.default_answer = default_answer
        self.names = names  # the rules and tables, in order
        self.python = python  # the generated source, for `explain` and debugging
        self.reads = reads  # the top-level fields it reads (`input.amount`), in the order first read

    def decide_many(self, rows: Iterable[tuple[Any, Any, Any]]) -> list[Decision]:
        """Decide over (request, output, meta) triples, e.g. logged predictions for a backtest."""
        decide = self.decide
        # A million decisions are millions of new containers, none in a cycle: without this the
        # collector would rescan the growing result list again and again. (Rows come as triples:
        # turning them into the columns decide_batch takes costs what the batch form saves.)
        with collector_paused():
            return [decide(request, output, meta) for request, output, meta in rows]

    def apply(self, output: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
        """The output after the decision: the default answer if it fell back, then the `set` overrides."""
        base = self.default_answer if decision.fallback and self.default_answer is not None else output
        result = dict(base)
        result.update(decision.set)
        return result

    def __repr__(self) -> str:
        return f"RuleSet({self.filename!r}, version={self.version!r}, rules={len(self.names)})"


def load_rules(
    source: str | Path,
    *,
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    labels: Collection[str] | None = None,
    filename: str | None = None,
    meta_schema: dict[str, Any] | None = None,
) -> RuleSet:
    """Load, check and compile a rules file.

    `source` is a Path, or a str that is either YAML text or the path of an
    existing file (a one-line str naming a file). The schemas are JSON Schemas
    (as `TypeAdapter(...).json_schema()` gives) for the request, the model's
    output and the request metadata; `labels` are the labels the model can
    output. Raises RulesError listing every problem; warnings are on the
    returned RuleSet.
    """
    text, name = _read(source, filename)
    diags = Diagnostics(name)
    spec = parse_spec(text, diags)
    if spec is None:
        diags.raise_if_errors()
        raise RulesError(f"{name}: the rules could not be read")  # pragma: no cover - parse errors always raise above
    checker = Checker(
        diags, input_schema=input_schema, output_schema=output_schema, meta_schema=meta_schema, labels=labels
    )
    checker.check(spec)
    _check_fallback(spec, diags, checker)
    tables = analyse(spec, diags, checker.types, checker.paths)
    diags.raise_if_errors()
    version = spec.version or hashlib.sha256(text.encode()).hexdigest()[:12]
    python, namespace, reads = generate(spec, version, checker.types, tables)
    exec(compile(python, f"<rules {name} {version}>", "exec"), namespace)  # our generated code, not rule text
    return RuleSet(
        namespace["decide"],
        version=version,
        source=text,
        filename=name,
        warnings=[d for d in diags.sorted() if d.severity == "warning"],
        default_answer=spec.defaults.answer,
        names=[step.name for step in spec.steps],
        decide_batch=namespace["decide_batch"],
        reads_meta=namespace["_reads_meta"],
        python=python,
        reads=reads,
    )


def _read(source: str | Path, filename: str | None) -> tuple[str, str]:
    if isinstance(source, Path) or ("\n" not in source and source.strip() and Path(source).is_file()):
        path = Path(source)
        try:
            return path.read_text(encoding="utf-8"), filename or str(source)
        except (OSError, UnicodeDecodeError) as err:
            raise RulesError(f"cannot read the rules file {str(path)!r}: {err}") from None
    return source, filename or "rules.yaml"


def _check_fallback(spec: Spec, diags: Diagnostics, checker: Checker) -> None:
    answer = spec.defaults.answer
    uses = [s for s in spec.steps if isinstance(s, Rule) and s.actions.fallback]
    uses_table = any(o.name == "fallback" for s in spec.steps if not isinstance(s, Rule) for o in s.outputs)
    if answer is None and (uses or uses_table):
        where = uses[0].spot if uses else None
        diags.warning(
            where,
            "fallback: true, but `default:` has no `answer:`; the service's own default answer will be used",
        )
    if isinstance(answer, dict):
        checker.answer(answer, spec.defaults.answer_spot)
