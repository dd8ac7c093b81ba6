"""The status and the one JSON error body (shipway.web) for each error of the HTTP service."""

from __future__ import annotations

from shipway.errors import (
    InputError,
    Overloaded,
    PayloadError,
    PredictTimeout,
    ShipwayError,
)
from shipway.web import dumps, error_body

__all__ = ["dumps", "error_body", "error_for"]


def error_for(err: BaseException, request_id: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, body and extra headers for an error raised while serving a request.

    Only errors about the request itself are described to the caller; anything
    from inside the model is answered as a generic 500 (and logged in full).
    """
    if isinstance(err, PayloadError):
        return err.status, error_body("payload_error", str(err), request_id), []
    if isinstance(err, InputError):
        return 422, error_body("input_error", str(err), request_id, err.details), []
    if isinstance(err, Overloaded):
        headers = [(b"retry-after", str(err.retry_after_s).encode())]
        return 503, error_body("overloaded", str(err), request_id), headers
    if isinstance(err, PredictTimeout):
        return 504, error_body("timeout", str(err), request_id), []
    kind = "prediction_error" if isinstance(err, ShipwayError) else "internal_error"
    message = f"the prediction failed inside the service; its log has the traceback under request id {request_id}"
    return 500, error_body(kind, message, request_id), []
