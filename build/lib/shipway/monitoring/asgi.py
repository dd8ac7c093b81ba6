"""ASGI plumbing for the dashboard: responses, bodies and query strings.

Monitoring cannot import the service's own (serving.http): a capability never imports another.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from shipway.errors import ConfigError

__all__ = ["HTML", "JSON", "Receive", "Scope", "Send", "query", "query_float", "query_int", "read_body", "respond"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HTML = b"text/html; charset=utf-8"
JSON = b"application/json"


def query(scope: Scope) -> dict[str, str]:
    """The query string's parameters; the last value of a repeated one."""
    return {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}


def query_int(params: dict[str, str], key: str, default: int, most: int) -> int:
    """The whole number `key`, from 1 to `most`; ConfigError (a 400) naming it otherwise."""
    text = params.get(key)
    if text is None:
        return default
    value = int(text) if text.isdigit() and len(text) < 10 else 0
    if not 1 <= value <= most:
        raise ConfigError(f"{key}={text!r} is not a whole number from 1 to {most}; e.g. {key}={default}")
    return value


def query_float(params: dict[str, str], key: str) -> float | None:
    """The finite number `key`, or None when absent; ConfigError (a 400) naming it otherwise."""
    text = params.get(key)
    try:
        value = float(text) if text else None
    except ValueError:
        value = math.nan
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"{key}={text!r} is not a number (unix seconds)")
    return value


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; ConfigError past `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ConfigError(f"the body is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    start = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
