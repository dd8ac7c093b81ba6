"""The one diagnostics type: a problem found in a file, at its line and column, and a collector.

    rules.yaml:3:11: error: unknown field output.intnt (did you mean output.intent?)
    alerts.yaml:7: error: alert 'r': unknown metric 'eror_rate'. Did you mean 'error_rate'?

Positions are 1-based, as compilers print them; a column (or line) of 0 is not known and is not
printed. Rules files, alert files and validation suites all report through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SEVERITIES", "Diagnostic", "Diagnostics"]

SEVERITIES = ("error", "warning")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: `severity` is "error" or "warning"."""

    file: str
    line: int
    column: int
    severity: str
    message: str

    @property
    def where(self) -> str:
        """`file:line:column`, without the parts that are not known."""
        return (
            self.file
            + (f":{self.line}" if self.line else "")
            + (f":{self.column}" if self.line and self.column else "")
        )

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


@dataclass
class Diagnostics:
    """Collects the diagnostics of one file while it is read; nothing is reported twice."""

    file: str
    items: list[Diagnostic] = field(default_factory=list)

    def add(self, severity: str, line: int, column: int, message: str) -> Diagnostic:
        item = Diagnostic(self.file, line, column, severity, message)
        if item not in self.items:
            self.items.append(item)
        return item

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def sorted(self) -> list[Diagnostic]:
        """Every diagnostic in the order of the file (a stable sort: ties keep their order)."""
        return sorted(self.items, key=lambda d: (d.line, d.column))

    def summary(self, what: str) -> str | None:
        """None without errors; else `<file> has N errors; <what>:` and every diagnostic, one a line."""
        errors = self.errors
        if not errors:
            return None
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        lines = "\n".join(str(d) for d in self.sorted())
        return f"{self.file} has {count}; {what}:\n{lines}"
