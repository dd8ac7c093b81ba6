"""Where a piece of a suite came from: file and line, for errors that point at it.

A suite read from YAML is made of `Located` mappings and `LocatedList`s that
remember their line and each key's line; a suite given as plain dicts (an
expectation sent to /explain as JSON) has no lines, and errors name the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["Located", "LocatedList", "did_you_mean", "line_of", "where"]


class Located(dict[str, Any]):
    """A mapping from a YAML file that knows its own line and its keys' lines."""

    file: str = ""
    line: int = 0
    key_lines: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}


class LocatedList(list[Any]):
    """A sequence from a YAML file that knows its own line and its items' lines."""

    file: str = ""
    line: int = 0
    item_lines: list[int]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines = []


def where(node: Any, key: str | int | None = None, fallback: str = "") -> str:
    """`file:line` for `node` (or for its `key`), or `fallback` when it has no location."""
    if isinstance(node, Located) and node.file:
        line = node.key_lines.get(str(key), node.line) if key is not None else node.line
        return f"{node.file}:{line}"
    if isinstance(node, LocatedList) and node.file:
        line = node.item_lines[key] if isinstance(key, int) and key < len(node.item_lines) else node.line
        return f"{node.file}:{line}"
    return fallback


def line_of(node: Any, key: str | int | None = None) -> int | None:
    text = where(node, key)
    return int(text.rsplit(":", 1)[1]) if text else None


def did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""
