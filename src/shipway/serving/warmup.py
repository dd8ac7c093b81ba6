"""Warm-up: readiness waits for one real prediction through the whole serving path."""

from __future__ import annotations

import logging
from typing import Any

from shipway.errors import ShipwayError
from shipway.serving.runtime import Runtime

__all__ = ["warm_up"]

logger = logging.getLogger("shipway.serving")

_NONE = object()


async def warm_up(rt: Runtime) -> None:
    """Run the example through the whole serving path; the worker is ready only once it passed."""
    assert rt.pipeline is not None and rt.batcher is not None
    example = _example(rt)
    if example is _NONE:
        logger.warning(
            "no warm-up input: define `example = ...` in service.py so readiness "
            "waits for a real prediction; ready after load only"
        )
    else:
        try:
            await rt.batcher.submit(rt.pipeline.parse(example))
        except Exception as err:
            if rt.service.has_example:
                rt.not_ready_reason = f"the warm-up prediction on `example` failed: {err}"
                logger.error("warm-up prediction failed; not ready", exc_info=err)
                return
            # A guessed input the model rejects says nothing about the model.
            logger.warning(
                "the guessed warm-up input %r failed (%s); define `example = ...` in "
                "service.py so readiness waits for a real prediction; ready after load only",
                example,
                err,
            )
    rt.ready = True
    rt.not_ready_reason = ""
    logger.info("ready", extra={"ids": rt.ids})


def _example(rt: Runtime) -> Any:
    assert rt.pipeline is not None
    if rt.service.has_example:
        return rt.service.example
    candidates: tuple[Any, ...] = ({}, "warm-up", [], 0)
    for candidate in candidates:
        try:
            rt.pipeline.parse(candidate)
            return candidate
        except ShipwayError:
            continue
    return _NONE
