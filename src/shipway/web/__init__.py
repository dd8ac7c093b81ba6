"""Web plumbing shared by the service and the dashboard (below the capabilities).

shipway.web.answers      the one JSON error body (`error_body`) and the JSON writer (`dumps`)
shipway.web.request_ids  the caller's request id when safe to echo, else a new one
shipway.web.http         ASGI types, headers, bodies with a size limit, query strings, responses
shipway.web.tokens       the bearer-token check (constant-time compare) and the limit on wrong tries
"""

from __future__ import annotations

from shipway.web.answers import dumps, error_body
from shipway.web.request_ids import clean_id, new_id
from shipway.web.tokens import FailedAttempts, Refusal, bearer, check_token, token_matches

__all__ = [
    "FailedAttempts",
    "Refusal",
    "bearer",
    "check_token",
    "clean_id",
    "dumps",
    "error_body",
    "new_id",
    "token_matches",
]
