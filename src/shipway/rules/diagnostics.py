"""Where a problem in a rules file is: a `Spot` maps rule text to the file's lines and columns.

The diagnostics themselves are `shipway.common.diagnostics`' one type.

Positions are 1-based lines and columns, as compilers print them. A `Spot`
maps an offset inside one YAML scalar's text back to the file, so an error
deep inside an expression or a table cell points at the right character.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipway.common import diagnostics as common
from shipway.common.diagnostics import Diagnostic
from shipway.errors import RulesError

__all__ = ["Diagnostic", "Diagnostics", "Spot"]


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


class Diagnostics(common.Diagnostics):
    """`shipway.common.diagnostics.Diagnostics` with the rules' positions: a `Spot` and an offset
    into its text; `raise_if_errors` ends the load."""

    def error(self, spot: Spot | None, message: str, offset: int = 0) -> None:
        self._at("error", spot, message, offset)

    def warning(self, spot: Spot | None, message: str, offset: int = 0) -> None:
        self._at("warning", spot, message, offset)

    def _at(self, severity: str, spot: Spot | None, message: str, offset: int) -> None:
        line, column = spot.locate(offset) if spot is not None else (1, 1)
        self.add(severity, line, column, message)

    def raise_if_errors(self) -> None:
        summary = self.summary("the rules were not loaded")
        if summary is not None:
            raise RulesError(summary, self.sorted())


def describe(value: Any) -> str:
    """A short repr for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
