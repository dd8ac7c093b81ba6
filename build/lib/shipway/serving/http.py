"""ASGI plumbing shared by the service's endpoints: headers, bodies, responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shipway.errors import PayloadError
from shipway.web import clean_id, new_id

__all__ = ["JSON", "Receive", "Scope", "Send", "clean_id", "read_body", "request_headers", "send_response", "too_large"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

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
