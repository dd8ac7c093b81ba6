"""Request ids: the caller's `x-request-id` when it is safe to echo, else a new one."""

from __future__ import annotations

import os

__all__ = ["clean_id", "new_id"]


def clean_id(value: bytes) -> str | None:
    """The caller's request id, only when short and printable: it goes into logs and headers."""
    if 0 < len(value) <= 200 and value.isascii():
        text = value.decode()
        if text.isprintable() and " " not in text:
            return text
    return None


def new_id() -> str:
    """A request id for a caller that sent none."""
    return os.urandom(12).hex()
