"""A served worker holds one store handle: the project's (store/provider.py), shared by the rules,
the model history, feedback, the prediction log's writer, the dashboard and the jobs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from conftest import SERVICES, wait_for

ROUTER = SERVICES / "router"


def _open_handles(db: Path) -> int:
    """How many connections this process holds on the SQLite file `db` (each opens it once)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(db):
                count += 1
        except OSError:
            continue  # closed while we looked
    return count


def test_a_worker_reads_and_writes_the_store_through_one_handle(serve_in_process: Any) -> None:
    server = serve_in_process(ROUTER)
    db = Path(server.store_url.removeprefix("sqlite:///")).resolve()
    answer = server.post("/predict", json={"text": "card_arrival 0.9"}, headers={"x-request-id": "one-handle"})
    assert answer.status_code == 200, answer.text
    log = server.app.runtime.log
    wait_for(lambda: log.stats["written"] >= 1, what="the prediction log's writer to write the answer")
    feedback = server.post("/feedback", json={"request_id": "one-handle", "label": "card_arrival"})
    assert feedback.status_code == 200, feedback.text
    metrics = server.get("/dashboard/api/metrics")  # the mounted dashboard reads the store
    assert metrics.status_code == 200, metrics.text
    assert _open_handles(db) == 1
