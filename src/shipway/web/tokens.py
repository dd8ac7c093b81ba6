"""The one bearer-token check for the admin routes, feedback and the dashboard, and the limit on failed tries.

- Credentials come as `Authorization: Bearer <token>` exactly (RFC 6750 section 2.1): the scheme
  `Bearer` in any case (auth schemes are case-insensitive, RFC 7235 section 2.1), one space, the
  token, nothing after it. Any other scheme, a bare token, or extra spaces is no token.
- The token is compared in constant time (`hmac.compare_digest`).
- Each client address may fail `burst` times in a row; then one more try every `every_s`
  seconds. Until then it is answered 429 with Retry-After, and its token is not even compared.
  The count lives in memory, per worker process.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from dataclasses import dataclass

__all__ = ["FailedAttempts", "Refusal", "bearer", "check_token", "token_matches"]


def bearer(authorization: bytes | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None for any other form."""
    if authorization is None:
        return None
    scheme, space, token = authorization.partition(b" ")
    if scheme.lower() != b"bearer" or not space or not token or token != token.strip() or b" " in token:
        return None
    return token


def token_matches(given: bytes | str | None, token: str) -> bool:
    """Whether `given` is `token`, compared in constant time; never with an empty token."""
    if given is None or not token:
        return False
    raw = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(raw, token.encode())


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a caller may not go on: the HTTP status, the error type, the message and extra headers."""

    status: int
    kind: str
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


def check_token(
    attempts: FailedAttempts, client: str, authorization: bytes | None, token: str | None, what: str, which: str
) -> Refusal | None:
    """None when the caller may go on. Else the refusal: 403 when no token is set, 429 with
    Retry-After when `client` sent too many wrong tokens (its token is then not compared), 401 for
    a missing or wrong one. `what` names the operation, `which` the variable holding its token."""
    if not token:
        return Refusal(
            403,
            "forbidden",
            f"{what} is off: start the service with {which} set to a secret token, "
            f"then send it as `Authorization: Bearer <token>`",
        )
    wait = attempts.retry_after(client)
    if wait:
        message = f"too many wrong tokens from {client}; try again in {wait} s"
        return Refusal(429, "too_many_attempts", message, ((b"retry-after", str(wait).encode()),))
    if token_matches(bearer(authorization), token):
        return None
    if authorization is not None:
        attempts.failed(client)  # a wrong token; a request without one is not a guess
    message = f"{what} needs `Authorization: Bearer <token>` (exactly that scheme) with the service's {which}"
    return Refusal(401, "unauthorized", message)


class FailedAttempts:
    """A token bucket of failed tries per client address: `burst` at once, then one per `every_s`."""

    def __init__(self, burst: int = 10, every_s: float = 6.0, max_clients: int = 4096) -> None:
        self.burst = burst
        self.every_s = every_s
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tries left, when counted)
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int:
        """0 when `client` may try a token now; else the whole seconds until it may."""
        with self._lock:
            left = self._left(client, time.monotonic() if now is None else now)
        return 0 if left >= 1 else math.ceil((1 - left) * self.every_s)

    def failed(self, client: str, now: float | None = None) -> None:
        """Count a wrong token from `client`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            left = self._left(client, now)
            self._buckets.pop(client, None)  # re-inserted last: the dict stays oldest first
            if len(self._buckets) >= self.max_clients:
                self._forget(now)
            self._buckets[client] = (max(left - 1, 0.0), now)

    def _left(self, client: str, now: float) -> float:
        entry = self._buckets.get(client)
        if entry is None:
            return float(self.burst)
        left, when = entry
        return min(float(self.burst), left + (now - when) / self.every_s)

    def _forget(self, now: float) -> None:
        """Make room: drop clients whose budget has refilled, else the oldest half."""
        full = [c for c in self._buckets if self._left(c, now) >= self.burst]
        for client in full or list(self._buckets)[: self.max_clients // 2]:
            del self._buckets[client]
