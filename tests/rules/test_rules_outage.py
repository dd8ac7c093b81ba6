"""A rules store that opens but cannot answer (a full disk, a table locked by someone else)
is logged once per outage, and once when it is back, whatever the poll rate.

The store is the real PostgreSQL: another session holds a lock on the rules history, and
the service's connection gives up waiting after lock_timeout, as it would on a full disk
after its write failed: the connection opens, the work fails."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from conftest import SERVICES
from store_fixtures import with_query

from shipway.core.schema import Schema
from shipway.core.service import import_service
from shipway.core.settings import load_settings
from shipway.rules.lifecycle import RulesManager

pytest_plugins = ["store_fixtures"]

DOWN, BACK = "store unavailable", "store is back"  # the project's store provider (store/provider.py)


def test_a_rules_store_outage_is_logged_once_and_its_end_once(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    psycopg = pytest.importorskip("psycopg")
    project = Path(shutil.copytree(SERVICES / "router", tmp_path / "router"))
    search_path = dict(parse_qsl(urlsplit(postgres_url).query))["options"]  # the test's own schema
    url = with_query(postgres_url, options=f"{search_path} -clock_timeout=200").replace("+", "%20")
    settings = load_settings(project, {"store.url": url})
    module, _ = import_service(project / "service.py")
    rules = RulesManager(settings, "router", (Schema(module.Message, "input"), Schema(module.Intent, "output")))
    rules.preload()  # the rules file, recorded in the store's history

    locker = psycopg.connect(url, autocommit=False)
    try:
        with caplog.at_level(logging.INFO, logger="shipway.store"):
            locker.execute("LOCK TABLE rules_history IN ACCESS EXCLUSIVE MODE")
            for _ in range(4):
                rules.sync()  # opens the store, then fails to read the history
            down = [r.getMessage() for r in caplog.records]
            locker.rollback()  # the lock is released: the store answers again
            for _ in range(3):
                rules.sync()
    finally:
        locker.close()
        rules.close()
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in down if m.startswith(DOWN)] == [down[0]], down
    assert [m for m in messages if m.startswith((DOWN, BACK))] == [down[0], BACK], messages
    assert rules.live.active.live is not None and rules.live.active.live.version
