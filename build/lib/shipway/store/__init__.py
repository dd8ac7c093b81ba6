"""The one place in shipway that speaks SQL.

`open_store(url)` returns an open store for `sqlite:///...` (the embedded
default) or `postgresql://...` (shared by several replicas); `PredictionLog`
batches the serving layer's prediction records into it off the request path.
"""

from __future__ import annotations

from pathlib import Path

from shipway.errors import StoreError
from shipway.store.base import Store, safe_url
from shipway.store.prediction_log import PredictionLog
from shipway.store.records import PredictionRecord, RulesEvent

__all__ = ["PredictionLog", "PredictionRecord", "RulesEvent", "Store", "open_store", "store_from_url"]

_SCHEMES = "sqlite:///, postgresql:// or postgres://"
_EXAMPLES = "sqlite:///shipway.db or postgresql://user:password@host:5432/shipway"


def store_from_url(url: str, base_dir: Path | None = None) -> Store:
    """The store a URL names, not yet opened: no file or connection is touched.

    A relative SQLite path resolves against `base_dir` (default: the current
    folder). Raises StoreError for a URL no backend accepts.
    """
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from shipway.store.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, base_dir)
    if scheme in ("postgresql", "postgres"):
        try:
            from shipway.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                f"the store URL {safe_url(url)} needs the PostgreSQL driver psycopg, which "
                f"is not installed ({exc}); install it with pip install 'shipway[postgres]'"
            ) from exc
        return PostgresStore(url)
    raise StoreError(
        f"unknown store URL {safe_url(url)!r}: the scheme must be one of {_SCHEMES}, for example {_EXAMPLES}"
    )


def open_store(url: str, base_dir: Path | None = None) -> Store:
    """The store a URL names, opened (schema created or migrated); close it when done.

    Raises StoreError for a bad URL and StoreUnavailable if the store cannot be
    reached now.
    """
    store = store_from_url(url, base_dir)
    store.open()
    return store
