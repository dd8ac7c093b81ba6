"""Reading a user's text file (an alerts file, a suite) with an error that names it."""

from __future__ import annotations

from pathlib import Path

__all__ = ["read_text"]


def read_text(file: Path, what: str, hint: str, error: type[Exception]) -> str:
    """The file's text (UTF-8); `error` saying which file (`what` and its path) is missing, with
    `hint`, or cannot be read, and why."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {file} does not exist; {hint}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"cannot read {what} {file}: {err}") from None
