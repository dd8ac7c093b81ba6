"""Timeline annotations: notes on a moment of a service's life, with who wrote them.

`annotate` records one (now, unless `at` says when it applies); `timeline` reads a service's
notes from a time on. Both take the store they are given; the table is `store/annotations.py`.
"""

from __future__ import annotations

import time

from shipway.common.times import check_time
from shipway.errors import ConfigError
from shipway.registry import who
from shipway.store.annotations import Annotation
from shipway.store.base import Store

__all__ = ["MAX_TEXT", "annotate", "timeline"]

MAX_TEXT = 2000  # a note, not a document: longer text belongs in a linked page


def annotate(store: Store, service: str, text: str, *, actor: str | None = None, at: float | None = None) -> Annotation:
    """Record `text` on `service`'s timeline at `at` (default now), by `actor` (default
    $SHIPWAY_ACTOR, else the login name); the stored note, with its id."""
    text = text.strip()
    if not text:
        raise ConfigError("the annotation is empty; give the note's text, e.g. shipway annotate 'retrained on March'")
    if len(text) > MAX_TEXT:
        raise ConfigError(
            f"the annotation is {len(text)} characters, over {MAX_TEXT}; shorten it and link to a page for the rest"
        )
    if not service:
        raise ConfigError("no service to annotate; give --service NAME or set `name` in shipway.toml")
    now = time.time()
    try:
        ts = now if at is None else check_time(at, now, "at")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return store.add_annotation(Annotation(service, ts, actor or who(), text))


def timeline(store: Store, service: str | None, since: float | None = None) -> list[Annotation]:
    """The notes of `service` (every service if None) from `since` on, oldest first."""
    return store.annotations(service, since=since)
