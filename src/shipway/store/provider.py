"""One store handle per process, with one outage policy.

A project's rules, model history, commands and jobs share the handle a `StoreProvider`
opens on first use, instead of each opening its own. The policy, in one place:

- `get()` answers an open store or raises StoreUnavailable naming the store and what to
  do; `available()` answers None instead, for callers that carry on without it (a
  worker keeps the rules and model it serves). The first failure is logged once, and
  the recovery once, however many callers asked meanwhile.
- A failed call hands its error to `failed()`: the outage is logged once, and the handle
  stays shared: each backend reconnects on its next call (PostgreSQL reopens a broken
  connection; an SQLite file needs none), so a store that comes back is picked up without
  a restart, and no caller's handle is closed under another's feet (the prediction log's
  writer thread, the rules, the models, feedback, jobs and the dashboard share it).
- A handle never crosses a fork: after one, the child opens its own.
- `existing()` opens the store only if it already exists, for read-only commands that
  must not create an empty SQLite file in a project folder.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from shipway.errors import StoreError, StoreUnavailable
from shipway.store import Store, store_from_url
from shipway.store.base import safe_url

__all__ = ["StoreProvider"]

logger = logging.getLogger("shipway.store")


class StoreProvider:
    """The store of one project in this process. Cheap to build: nothing opens until asked."""

    def __init__(self, url: str, base_dir: Path | None = None) -> None:
        self.url = url
        self.base_dir = base_dir
        self._store: Store | None = None
        self._pid = os.getpid()
        self._down = False  # an outage has been logged and not yet its end
        self._lock = threading.Lock()

    def get(self) -> Store:
        """The open store; StoreUnavailable (logged once per outage) when it cannot be reached."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connection is not ours to use
                self._store, self._pid = None, os.getpid()
            if self._store is None:
                store = store_from_url(self.url, self.base_dir)
                try:
                    store.open()
                except StoreUnavailable as err:
                    self._log_down(err)
                    raise StoreUnavailable(
                        f"the store {safe_url(self.url)} is unreachable ({err}); what serves keeps serving, "
                        f"and changes are recorded there, so try again when it is back (store.url)"
                    ) from err
                self._store = store
            return self._store

    def available(self) -> Store | None:
        """The open store, or None while it is down (the outage is logged once)."""
        try:
            return self.get()
        except StoreUnavailable:
            return None

    def existing(self) -> Store | None:
        """The store if it already exists (an SQLite file on disk, or any server store), else None;
        never creates one. None too while it is down."""
        store = store_from_url(self.url, self.base_dir)
        path = getattr(store, "path", None)
        if isinstance(path, Path) and not path.exists():
            return None
        return self.available()

    def answered(self) -> None:
        """A call succeeded: an outage logged before is over."""
        if self._down:
            self._down = False
            logger.info("store is back", extra={"store": safe_url(self.url)})

    def failed(self, err: StoreError) -> None:
        """A call failed: log the outage once (the backend reconnects on the next call)."""
        self._log_down(err)

    def _log_down(self, err: StoreError) -> None:
        if not self._down:
            self._down = True
            logger.warning("store unavailable; what serves keeps serving: %s", err, extra={"store": safe_url(self.url)})

    def close(self) -> None:
        """Close the handle (before a fork, at shutdown); the next call opens a new one."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None and self._pid == os.getpid():
            store.close()
