"""The helpers compiled rules call at run time.

Generated code inlines what it can prove safe from the schemas; what it
cannot (values whose types are unknown until run time) goes through these,
which give a missing value (None) rather than raising or doing something
unbounded: `"a" * 10**9` or `"%s" % x` never run, `x / 0` is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["HELPERS", "compile_pattern", "mapping", "walk"]

_NUMBERS = (int, float)


def mapping(value: Any) -> Any:
    """A root as a mapping: dicts pass through, models are dumped, anything else has no fields."""
    if isinstance(value, Mapping):
        return value
    if hasattr(type(value), "__pydantic_fields__") and not getattr(value, "__pydantic_extra__", None):
        # A pydantic model's own field values, without dumping it: nested models stay
        # models, which `walk` reads by declared field. Fast on the serving hot path.
        return value.__dict__
    dump = getattr(type(value), "model_dump", None)
    if dump is not None:
        return dump(value)
    return {}


def walk(value: Any, steps: tuple[Any, ...]) -> Any:
    """Follow keys and indices; any step that does not exist gives None."""
    for step in steps:
        if value is None:
            return None
        if isinstance(step, str):
            if isinstance(value, Mapping):
                value = value.get(step)
            elif step in (getattr(type(value), "model_fields", None) or ()):
                value = getattr(value, step)  # a declared field of a pydantic model, nothing else
            else:
                return None
        elif isinstance(step, int) and not isinstance(step, bool):
            if isinstance(value, (list, tuple, str)) and -len(value) <= step < len(value):
                value = value[step]
            else:
                return None
        else:
            return None
    return value


def _number(*values: Any) -> bool:
    for v in values:
        if not isinstance(v, _NUMBERS) or isinstance(v, bool):
            raise TypeError(f"expected numbers, got {type(v).__name__}")
    return True


def add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    _number(a, b)
    return a + b


def sub(a: Any, b: Any) -> Any:
    return None if a is None or b is None else _number(a, b) and a - b


def mul(a: Any, b: Any) -> Any:
    return None if a is None or b is None else _number(a, b) and a * b


def div(a: Any, b: Any) -> Any:
    return None if a is None or b is None or not (_number(a, b) and b) else a / b


def floordiv(a: Any, b: Any) -> Any:
    return None if a is None or b is None or not (_number(a, b) and b) else a // b


def mod(a: Any, b: Any) -> Any:
    return None if a is None or b is None or not (_number(a, b) and b) else a % b


def power(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    _number(a, b)
    if a == 0 and b < 0:
        return None
    result = a**b
    return None if isinstance(result, complex) else result  # (-8) ** 0.5 has no real value


def neg(a: Any) -> Any:
    return None if a is None else _number(a) and -a


def contained(a: Any, b: Any) -> bool:
    """`a in b` for the `in` operator: lists hold items, texts hold texts, missing holds nothing."""
    if a is None or b is None:
        return False
    if isinstance(b, str):
        return isinstance(a, str) and a in b
    if isinstance(b, (list, tuple, set, frozenset, Mapping)):
        try:
            return a in b
        except TypeError:  # an unhashable value tested against a dict's keys
            return False
    return False


def not_contained(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    return not contained(a, b)


def lower(a: Any) -> Any:
    return a.lower() if isinstance(a, str) else None


def upper(a: Any) -> Any:
    return a.upper() if isinstance(a, str) else None


def length(a: Any) -> Any:
    return len(a) if isinstance(a, (str, list, tuple, Mapping)) else None


def contains(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        return isinstance(b, str) and b in a
    if isinstance(a, (list, tuple)):
        return b is not None and b in a
    return False


def startswith(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.startswith(b)


def endswith(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.endswith(b)


def matches(a: Any, pattern: Any) -> bool:
    return isinstance(a, str) and pattern.search(a) is not None


def absolute(a: Any) -> Any:
    return None if a is None else _number(a) and abs(a)


def rounded(a: Any, digits: Any = None) -> Any:
    if a is None:
        return None
    _number(a)
    if digits is None:
        return round(a)
    _number(digits)
    return round(a, max(min(int(digits), 15), -15))


def smallest(*values: Any) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def largest(*values: Any) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def coalesce(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def error(errors: tuple[str, ...], where: str, err: BaseException) -> tuple[str, ...]:
    return (*errors, f"{where}: {type(err).__name__}: {err}")


def compile_pattern(pattern: str) -> tuple[Any, str | None]:
    """A linear-time (RE2) regular expression, or why there is none."""
    try:
        import re2  # type: ignore[import-not-found,import-untyped]
    except ImportError:
        return None, "regular expressions need google-re2, which runs them in linear time: pip install 'shipway[re2]'"
    try:
        return re2.compile(pattern), None
    except Exception as err:  # re2 raises its own error type
        return None, f"invalid regular expression {pattern!r}: {err}"


HELPERS: dict[str, Any] = {
    "_mapping": mapping,
    "_walk": walk,
    "_add": add,
    "_sub": sub,
    "_mul": mul,
    "_div": div,
    "_floordiv": floordiv,
    "_mod": mod,
    "_pow": power,
    "_neg": neg,
    "_in": contained,
    "_notin": not_contained,
    "_lower": lower,
    "_upper": upper,
    "_length": length,
    "_contains": contains,
    "_startswith": startswith,
    "_endswith": endswith,
    "_matches": matches,
    "_abs": absolute,
    "_round": rounded,
    "_min": smallest,
    "_max": largest,
    "_coalesce": coalesce,
    "_err": error,
}
