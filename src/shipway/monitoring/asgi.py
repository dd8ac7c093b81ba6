"""The dashboard's ASGI plumbing: shipway.web.http's, the one set of helpers for every HTTP answer."""

from __future__ import annotations

from shipway.web.http import HTML, JSON, Receive, Scope, Send, query, query_float, query_int, respond

__all__ = ["HTML", "JSON", "Receive", "Scope", "Send", "query", "query_float", "query_int", "read_body", "respond"]


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; ConfigError past `limit` bytes (a 400 on the dashboard)."""
    from shipway.errors import ConfigError, PayloadError
    from shipway.web.http import read_body as read

    try:
        return await read(receive, limit)
    except PayloadError:
        raise ConfigError(f"the body is over {limit} bytes") from None
