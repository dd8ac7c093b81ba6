"""Stage: one named step of a pipeline, with a single and a batch form."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from shipway.errors import ServiceError

__all__ = ["Stage", "stage_arity"]

One = Callable[[Any, Any], Any]
Many = Callable[[list[Any], list[Any]], list[Any]]
# The batch form over columns, for offline batches (`Pipeline.run_columns`): the predict stage's
# gives the service's column answers (core/answer_columns.py); the rules stage's an object with
# `answers`, one per value, or None to run `many` instead.
Columns = Callable[[Any, list[Any]], Any]

KINDS = ("input", "before", "predict", "after", "rules", "output")


def stage_arity(fn: Callable[..., Any], what: str) -> int:
    """How many positional parameters `fn` takes (1 or 2), or a ServiceError."""
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):  # builtins without a signature: assume the value only
        return 1
    if len(params) not in (1, 2):
        names = ", ".join(p.name for p in params) or "none"
        raise ServiceError(
            f"{what} {getattr(fn, '__name__', fn)!r} takes {len(params)} required parameters "
            f"({names}); it must take the value, or the value and the request: "
            f"`def {getattr(fn, '__name__', 'stage')}(value)` or `(value, request)`."
        )
    return len(params)


class Stage:
    """A named step. `one(value, request)` runs it on one item, `many` on a list.

    Either form may be given; the other is derived, so every stage runs both
    in-process on one input and over a batch. `request` is the validated input
    of the whole pipeline, for stages that need it beside the current value.
    """

    __slots__ = ("columns", "kind", "many", "name", "one")

    def __init__(
        self, name: str, kind: str, one: One | None = None, many: Many | None = None, columns: Columns | None = None
    ) -> None:
        if kind not in KINDS:
            raise ServiceError(f"stage kind {kind!r} is not one of {', '.join(KINDS)}")
        if one is None and many is None:
            raise ServiceError(f"stage {name!r} needs a single form, a batch form, or both")
        self.name = name
        self.kind = kind
        self.one: One = one if one is not None else _one_from_many(many)  # type: ignore[arg-type]
        self.many: Many = many if many is not None else _many_from_one(self.one)
        # Optional: the batch form over columns, for offline batches (`Pipeline.run_columns`).
        self.columns = columns

    @classmethod
    def from_function(cls, fn: Callable[..., Any] | Stage, kind: str) -> Stage:
        """Wrap a user's `fn(value)` or `fn(value, request)` as a stage."""
        if isinstance(fn, Stage):
            return fn
        if not callable(fn):
            raise ServiceError(f"{kind} stages must be functions; got {fn!r}")
        name = getattr(fn, "__name__", type(fn).__name__)
        if stage_arity(fn, f"{kind}-stage") == 2:
            return cls(name, kind, one=fn)
        user_fn = fn

        def one(value: Any, _request: Any) -> Any:
            return user_fn(value)

        def many(values: list[Any], _requests: list[Any]) -> list[Any]:
            return list(map(user_fn, values))  # `one` over the batch, without its frame per item

        return cls(name, kind, one=one, many=many)

    def __repr__(self) -> str:
        return f"Stage({self.name!r}, kind={self.kind!r})"


def _one_from_many(many: Many) -> One:
    def one(value: Any, request: Any) -> Any:
        return many([value], [request])[0]

    return one


def _many_from_one(one: One) -> Many:
    def many(values: list[Any], requests: list[Any]) -> list[Any]:
        return [one(v, r) for v, r in zip(values, requests, strict=False)]

    return many


def names(stages: Sequence[Stage]) -> list[str]:
    return [s.name for s in stages]
