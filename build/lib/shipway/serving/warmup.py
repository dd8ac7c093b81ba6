"""Warm-up: readiness waits for one real prediction through the whole serving path."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from shipway.errors import ShipwayError

if TYPE_CHECKING:
    from shipway.serving.app import App

__all__ = ["warm_up"]

logger = logging.getLogger("shipway.serving")

_NONE = object()


async def warm_up(app: App) -> None:
    """Run the example through the whole serving path; the worker is ready only once it passed."""
    assert app.pipeline is not None and app.batcher is not None
    example = _example(app)
    if example is _NONE:
        logger.warning(
            "no warm-up input: define `example = ...` in service.py so readiness "
            "waits for a real prediction; ready after load only"
        )
    else:
        try:
            await app.batcher.submit(app.pipeline.parse(example))
        except Exception as err:
            if app.service.has_example:
                app.not_ready_reason = f"the warm-up prediction on `example` failed: {err}"
                logger.error("warm-up prediction failed; not ready", exc_info=err)
                return
            # A guessed input the model rejects says nothing about the model.
            logger.warning(
                "the guessed warm-up input %r failed (%s); define `example = ...` in "
                "service.py so readiness waits for a real prediction; ready after load only",
                example,
                err,
            )
    app.ready = True
    app.not_ready_reason = ""
    logger.info("ready", extra={"ids": app.ids})


def _example(app: App) -> Any:
    assert app.pipeline is not None
    if app.service.has_example:
        return app.service.example
    candidates: tuple[Any, ...] = ({}, "warm-up", [], 0)
    for candidate in candidates:
        try:
            app.pipeline.parse(candidate)
            return candidate
        except ShipwayError:
            continue
    return _NONE
