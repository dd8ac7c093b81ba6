"""The service's token check, for the admin routes and feedback: shipway.web.tokens' one check,
its refusals sent in the service's one error shape."""

from __future__ import annotations

from shipway.serving.responses import error_body
from shipway.serving.runtime import Runtime
from shipway.web.http import Send
from shipway.web.tokens import check_token

__all__ = ["TOKEN_ENV", "guard"]

TOKEN_ENV = "SHIPWAY_ADMIN_TOKEN"


async def guard(
    rt: Runtime,
    send: Send,
    request_id: str,
    client: str,
    authorization: bytes | None,
    token: str | None,
    what: str,
    which: str,
) -> bool:
    """True when the caller may go on; else the refusal of `check_token` is sent."""
    refusal = check_token(rt.attempts, client, authorization, token, what, which)
    if refusal is None:
        return True
    body = error_body(refusal.kind, refusal.message, request_id)
    await rt.refuse(send, refusal.status, refusal.kind, body, request_id, list(refusal.headers) or None)
    return False
