"""POST /feedback: outcomes that arrive after the prediction (the true intent, a click).

The body is one outcome, a list, or {"items": [...]} (store.outcomes). The
answer says how many were joined to their predictions and which ids were
unknown, duplicates or late. When SHIPWAY_FEEDBACK_TOKEN (or, failing that,
SHIPWAY_ADMIN_TOKEN) is set, the endpoint needs it as a bearer token: outcomes
steer the metrics and alerts, so they should come from systems you trust.
A store that is down answers 503 with Retry-After; nothing is half written.
"""

from __future__ import annotations

import asyncio
import os

import orjson

from shipway.core.settings import Settings
from shipway.errors import InputError, PayloadError, StoreError, StoreUnavailable
from shipway.serving.guard import guard
from shipway.serving.responses import error_body, error_for
from shipway.serving.runtime import Runtime
from shipway.store.outcomes import parse_feedback, reader_of
from shipway.store.provider import StoreProvider
from shipway.web.http import Receive, Send, read_body, send_response

__all__ = ["FEEDBACK_TOKEN_ENV", "FeedbackWriter", "feedback_endpoint"]

FEEDBACK_TOKEN_ENV = "SHIPWAY_FEEDBACK_TOKEN"
ADMIN_TOKEN_ENV = "SHIPWAY_ADMIN_TOKEN"
RETRY_AFTER_S = 5


class FeedbackWriter:
    """One worker's feedback writes, on the project's store handle and its outage policy."""

    def __init__(self, settings: Settings, stores: StoreProvider) -> None:
        self.settings = settings
        self.stores = stores
        self.describe = reader_of(settings)

    def write(self, body: bytes) -> dict[str, object]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"the feedback body is not JSON ({exc}); send a JSON object or list") from exc
        records = parse_feedback(data, self.describe)
        store = self.stores.get()
        try:
            outcome = store.write_feedback(
                records, self.describe, late_after_s=self.settings["monitoring.late_after_s"]
            )
        except StoreUnavailable as err:
            self.stores.failed(err)  # reconnect on the next call
            raise
        self.stores.answered()
        return outcome.to_dict()


async def feedback_endpoint(
    rt: Runtime,
    writer: FeedbackWriter,
    receive: Receive,
    send: Send,
    request_id: str,
    authorization: bytes | None,
    client: str,
) -> None:
    token = os.environ.get(FEEDBACK_TOKEN_ENV) or os.environ.get(ADMIN_TOKEN_ENV)
    which = f"{FEEDBACK_TOKEN_ENV} (or {ADMIN_TOKEN_ENV} when that is the only one set)"
    if token and not await guard(rt, send, request_id, client, authorization, token, "feedback", which):
        return
    try:
        body = await read_body(receive, rt.max_body)
        outcome = await asyncio.to_thread(writer.write, body)
    except InputError as err:  # PayloadError too
        status, answer, headers = error_for(err, request_id)
        return await rt.refuse(send, status, "input_error", answer, request_id, headers)
    except StoreError as err:
        unavailable = isinstance(err, StoreUnavailable)
        answer = error_body(
            "store_unavailable" if unavailable else "store_error",
            f"the feedback was not stored: {err}" + ("; retry later" if unavailable else ""),
            request_id,
        )
        headers = [(b"retry-after", str(RETRY_AFTER_S).encode())] if unavailable else []
        return await rt.refuse(send, 503 if unavailable else 500, "store", answer, request_id, headers)
    if rt.metrics is not None:
        rt.metrics.request("feedback", 200)
    await send_response(send, 200, orjson.dumps(outcome), request_id)
