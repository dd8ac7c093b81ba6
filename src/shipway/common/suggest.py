"""The one "did you mean" helper: the closest of the names a caller could have meant.

    did_you_mean("lable", ["label", "text"])                  ->  " Did you mean 'label'?"
    did_you_mean("intnt", ["intent"], aside=True)             ->  " (did you mean intent?)"

Sentences in error messages use the first form; compiler-style diagnostics (rules files,
`file:line:col: error: ...`) the aside. Both come from `closest`, so every message suggests
the same name for the same typo.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["CUTOFF", "closest", "did_you_mean"]

CUTOFF = 0.6  # difflib's ratio below which two names are not "close"


def closest(name: str, options: Iterable[object]) -> str | None:
    """The option most like `name`, or None when none is close."""
    found = difflib.get_close_matches(name, [str(option) for option in options], n=1, cutoff=CUTOFF)
    return found[0] if found else None


def did_you_mean(name: str, options: Iterable[object], *, aside: bool = False, prefix: str = "") -> str:
    """` Did you mean 'x'?` (or with `aside`, ` (did you mean x?)`, `prefix` before the name)
    for the closest option; an empty string when none is close."""
    found = closest(name, options)
    if found is None:
        return ""
    return f" (did you mean {prefix}{found}?)" if aside else f" Did you mean {prefix + found!r}?"
