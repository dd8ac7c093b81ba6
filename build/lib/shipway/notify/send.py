"""POST JSON to a webhook, retrying with backoff; report how it went instead of raising.

A notification that cannot be sent must never break what sent it (a validation
run, an alert evaluation, a serving worker), so failures end up in `Delivery`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["Delivery", "post_json", "redact_url"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one post went. `url` has its secret part hidden."""

    url: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "attempts": self.attempts, "status": self.status, "error": self.error}


def redact_url(url: str) -> str:
    """`url` without its path: incoming-webhook URLs carry their secret there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") else url


def post_json(
    url: str,
    payload: Any,
    *,
    retries: int = 3,
    backoff_s: float = 0.5,
    timeout_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST JSON, retrying timeouts, connection errors, 429 and 5xx with exponential backoff.

    Other 4xx answers are not retried (the payload or URL is wrong). Never raises.
    """
    import httpx

    body = orjson.dumps(payload, default=str)
    status: int | None = None
    error: str | None = None
    attempts = 0
    for attempt in range(retries + 1):
        attempts = attempt + 1
        wait = backoff_s * 2**attempt
        try:
            response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=timeout_s)
            status = response.status_code
            if status < 300:
                return Delivery(redact_url(url), True, attempts, status)
            error = f"HTTP {status}: {response.text[:200]}"
            if status != 429 and status < 500:
                break
            retry_after = response.headers.get("retry-after", "")
            if status == 429 and retry_after.isdigit():
                wait = max(wait, min(float(retry_after), 30.0))
        except Exception as err:  # timeouts, refused connections, bad URLs: report, never raise
            status, error = None, f"{type(err).__name__}: {err}"
            if isinstance(err, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
                break
        if attempt < retries:
            sleep(min(wait, 30.0))
    return Delivery(redact_url(url), False, attempts, status, error)
