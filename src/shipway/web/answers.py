"""The one JSON error body of every HTTP answer shipway gives (the service and the dashboard), and its JSON writer.

{"error": {"type": "input_error", "message": "...", "request_id": "...",
           "details": [{"loc": ["text"], "msg": "...", "type": "..."}]}}
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

__all__ = ["dumps", "error_body"]


def error_body(kind: str, message: str, request_id: str, details: list[dict[str, Any]] | None = None) -> bytes:
    """Build the error body; every error response of the service comes from here. It cannot
    fail, whatever the details hold (they quote the request's values)."""
    error: dict[str, Any] = {"type": kind, "message": message, "request_id": request_id}
    if details:
        error["details"] = details
    return dumps({"error": error})


def dumps(value: Any) -> bytes:
    """JSON bytes of any answer: orjson's, or where orjson refuses a value (an integer beyond
    64 bits, which a request may hold, a lone surrogate, a key that is not text) the standard
    library's over a cleaned copy, which keeps big integers exact."""
    try:
        return orjson.dumps(value, default=str)
    except TypeError:
        return json.dumps(_plain(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    """`value` as dicts with text keys, lists, text, finite numbers, booleans and nulls."""
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # as orjson writes them
    return _text(value)


def _text(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a value whose __str__ fails
        text = f"<{type(value).__name__}>"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
