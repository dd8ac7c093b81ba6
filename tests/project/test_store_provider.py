"""The project's store handle: one per process, one outage policy, never created by a reader."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shipway.errors import StoreUnavailable
from shipway.project import Project
from shipway.store.provider import StoreProvider

ROUTER = Path(__file__).resolve().parent.parent / "services" / "router"


def test_an_outage_is_logged_once_and_its_end_once_and_the_handle_is_shared(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the store's folder should be")
    provider = StoreProvider(f"sqlite:///{blocker}/store.db")
    with caplog.at_level(logging.INFO, logger="shipway.store"):
        for _ in range(3):
            assert provider.available() is None
        with pytest.raises(StoreUnavailable, match=r"is unreachable .*store\.url"):
            provider.get()
        blocker.unlink()  # the store can be reached again
        store = provider.get()
        for _ in range(2):
            provider.answered()
        assert provider.get() is store and provider.available() is store  # one handle for every caller
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("store unavailable") for m in messages) == 1, messages
    assert sum(m == "store is back" for m in messages) == 1, messages
    provider.close()


def test_a_reader_never_creates_the_store(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet"
    provider = StoreProvider(f"sqlite:///{folder}/store.db")
    assert provider.existing() is None and not folder.exists()
    # `shipway predict` on a project whose store was never created answers, and creates nothing.
    project = Project.load(ROUTER, {"store.url": f"sqlite:///{folder}/store.db"})
    pipeline = project.pipeline()
    assert "decision" in project.answer(pipeline, b'{"text": "card_arrival 0.9"}').decode()
    assert not folder.exists()
