"""The service's token check, for the admin routes and feedback: shipway/tokens.py's one check,
with the answers in the service's one error shape."""

from __future__ import annotations

from shipway.serving.http import Send
from shipway.serving.responses import error_body
from shipway.serving.runtime import Runtime
from shipway.tokens import bearer, token_matches

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
    """True when the caller may go on. Else the refusal is sent: 403 when no token is set, 429 with
    Retry-After when this client sent too many wrong tokens (its token is then not compared), 401
    for a missing or wrong one. `what` names the operation, `which` the variable holding its token."""
    if not token:
        message = (
            f"{what} is off: start the service with {which} set to a secret token, "
            f"then send it as `Authorization: Bearer <token>`"
        )
        await rt.refuse(send, 403, "forbidden", error_body("forbidden", message, request_id), request_id)
        return False
    wait = rt.attempts.retry_after(client)
    if wait:
        message = f"too many wrong tokens from {client}; try again in {wait} s"
        body = error_body("too_many_attempts", message, request_id)
        await rt.refuse(send, 429, "too_many_attempts", body, request_id, [(b"retry-after", str(wait).encode())])
        return False
    if token_matches(bearer(authorization), token):
        return True
    if authorization is not None:
        rt.attempts.failed(client)  # a wrong token; a request without one is not a guess
    message = f"{what} needs `Authorization: Bearer <token>` (exactly that scheme) with the service's {which}"
    await rt.refuse(send, 401, "unauthorized", error_body("unauthorized", message, request_id), request_id)
    return False
