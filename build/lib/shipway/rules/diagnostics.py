"""Diagnostics: what is wrong with a rules file, and exactly where.

Positions are 1-based lines and columns, as compilers print them. A `Spot`
maps an offset inside one YAML scalar's text back to the file, so an error
deep inside an expression or a table cell points at the right character.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shipway.errors import RulesError

__all__ = ["Diagnostic", "Diagnostics", "Spot", "did_you_mean"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: `severity` is "error" or "warning"."""

    file: str
    line: int
    column: int
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class Spot:
    """Where a piece of rule text sits in the file: offsets into the text map to line:col.

    `lines` holds, for each line of the text, the 0-based file line and column
    where it starts; `exact` is False when YAML folding or escapes make the
    mapping approximate, in which case everything maps to the scalar's start.
    """

    lines: tuple[tuple[int, int], ...]
    exact: bool = True
    text: str = ""
    columns: tuple[int, ...] = ()  # one line with escapes: the file column of each character

    @classmethod
    def quoted(cls, line: int, column: int, raw: str, value: str) -> Spot:
        """A one-line quoted scalar: map each character of the value past its escapes."""
        quote, body = raw[0], raw[1:-1]
        columns: list[int] = []
        i = 0
        while i < len(body):
            columns.append(column + 1 + i)
            if quote == '"' and body[i] == "\\":
                code = body[i + 1 : i + 2]
                i += {"x": 4, "u": 6, "U": 10}.get(code, 2)
            elif quote == "'" and body[i : i + 2] == "''":
                i += 2
            else:
                i += 1
        if len(columns) != len(value):
            return cls.at(line, column)
        return cls(((line, column + 1),), True, value, tuple(columns))

    @classmethod
    def at(cls, line: int, column: int) -> Spot:
        return cls(((line, column),), exact=False)

    def locate(self, offset: int = 0) -> tuple[int, int]:
        """The 1-based (line, column) of character `offset` of the text."""
        if not self.exact or not self.text:
            line, column = self.lines[0]
            return line + 1, column + 1
        if self.columns:
            line = self.lines[0][0]
            if offset >= len(self.columns):
                return line + 1, self.columns[-1] + 1 + offset - len(self.columns) + 1
            return line + 1, self.columns[offset] + 1
        row = self.text.count("\n", 0, offset)
        start = self.text.rfind("\n", 0, offset) + 1
        row = min(row, len(self.lines) - 1)
        line, column = self.lines[row]
        return line + 1, column + (offset - start) + 1


def did_you_mean(name: str, options: Iterable[str], prefix: str = "") -> str:
    """` (did you mean X?)` for the closest option, or an empty string."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


@dataclass
class Diagnostics:
    """Collects diagnostics while a file is loaded; `raise_if_errors` ends the load."""

    file: str
    items: list[Diagnostic] = field(default_factory=list)

    def error(self, spot: Spot | None, message: str, offset: int = 0) -> None:
        self._add("error", spot, message, offset)

    def warning(self, spot: Spot | None, message: str, offset: int = 0) -> None:
        self._add("warning", spot, message, offset)

    def _add(self, severity: str, spot: Spot | None, message: str, offset: int) -> None:
        line, column = spot.locate(offset) if spot is not None else (1, 1)
        item = Diagnostic(self.file, line, column, severity, message)
        if item not in self.items:
            self.items.append(item)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.line, d.column))

    def raise_if_errors(self) -> None:
        errors = self.errors
        if not errors:
            return
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        lines = "\n".join(str(d) for d in self.sorted())
        raise RulesError(f"{self.file} has {count}; the rules were not loaded:\n{lines}", self.sorted())


def describe(value: Any) -> str:
    """A short repr for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
