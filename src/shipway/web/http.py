"""ASGI plumbing shared by the service and the dashboard: headers, bodies, query strings, responses.

The service's /predict path is hand-written over these (no framework between the socket and the
pipeline: docs/benchmarks.md); the dashboard may sit on a framework and still use the query checks.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from shipway.errors import ConfigError, PayloadError
from shipway.web.request_ids import clean_id, new_id

__all__ = [
    "HTML",
    "JSON",
    "Receive",
    "Scope",
    "Send",
    "query",
    "query_float",
    "query_int",
    "read_body",
    "request_headers",
    "respond",
    "send_response",
    "too_large",
]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HTML = b"text/html; charset=utf-8"
JSON = b"application/json"


def request_headers(scope: Scope) -> tuple[str, int, bytes | None]:
    """The request id (the caller's, or a new one), the content length (-1 if absent), and the
    Authorization header."""
    request_id = None
    length = -1
    authorization = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            request_id = clean_id(value)
        elif name == b"content-length":
            length = int(value) if value.isdigit() else -1
        elif name == b"authorization":
            authorization = value
    return request_id or new_id(), length, authorization


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; PayloadError (413) as soon as it passes `limit` bytes."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise PayloadError(too_large(len(body), limit), status=413)
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadError(too_large(size, limit), status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def query(scope: Scope) -> dict[str, str]:
    """The query string's parameters; the last value of a repeated one."""
    return {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}


def query_int(params: Mapping[str, str], key: str, default: int, most: int) -> int:
    """The whole number `key`, from 1 to `most`; ConfigError (a 400) naming it otherwise."""
    text = params.get(key)
    if text is None:
        return default
    value = int(text) if text.isdigit() and len(text) < 10 else 0
    if not 1 <= value <= most:
        raise ConfigError(f"{key}={text!r} is not a whole number from 1 to {most}; e.g. {key}={default}")
    return value


def query_float(params: Mapping[str, str], key: str) -> float | None:
    """The finite number `key`, or None when absent; ConfigError (a 400) naming it otherwise."""
    text = params.get(key)
    try:
        value = float(text) if text else None
    except ValueError:
        value = math.nan
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"{key}={text!r} is not a number (unix seconds)")
    return value


def too_large(size: int, limit: int) -> str:
    return (
        f"the body is {size} bytes, over the {limit}-byte limit; send a smaller body, "
        f"split it over several requests, or raise serve.max_body_bytes."
    )


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = JSON,
) -> None:
    start_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if headers:
        start_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    start = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
