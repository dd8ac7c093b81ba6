"""Structured logs: one JSON object per line, carrying the request id."""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from typing import Any

from shipway.web import dumps

__all__ = ["JsonFormatter", "configure_logging", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("shipway_request_id", default=None)

# Attributes every LogRecord has; anything else was passed in `extra=` and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": os.getpid(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return dumps(out).decode()  # never fails: a log line is written whatever the record holds


def configure_logging(level: str = "info") -> dict[str, Any]:
    """Send shipway, uvicorn and gunicorn logs to stderr as JSON lines.

    Returns the dictConfig used, so gunicorn can be handed the same one.
    """
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "shipway.serving.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
            for name in ("shipway", "uvicorn", "uvicorn.error", "gunicorn.error")
        }
        | {
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
    import logging.config

    logging.config.dictConfig(config)
    sys.stderr.flush()
    return config
