"""A store that is down never stops predictions: `shipway serve` against the real
PostgreSQL behind a proxy that goes away and comes back."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import SERVICES, start_server
from store_fixtures import TcpProxy, pg_target, stored_ids, wait_for, with_port

pytest_plugins = ["store_fixtures"]


def test_serving_survives_a_postgres_outage_and_loses_nothing(postgres_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy(pg_target(postgres_url)).start()
    server = start_server(SERVICES / "identity", tmp_path, store_url=with_port(postgres_url, proxy.port))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(20):
                assert (
                    client.post(
                        "/predict", json={"text": f"before {i}"}, headers={"x-request-id": f"before-{i}"}
                    ).status_code
                    == 200
                )
            wait_for(lambda: len(stored_ids(postgres_url)) == 20, what="the first 20 records")

            proxy.stop()  # the database becomes unreachable
            for i in range(100):
                response = client.post(
                    "/predict", json={"text": f"during {i}"}, headers={"x-request-id": f"during-{i}"}
                )
                assert response.status_code == 200, response.text
            wait_for(
                lambda: 'shipway_store_up{service="identity"} 0.0' in client.get("/metrics").text,
                what="the store to be reported down",
            )
            assert client.get("/ready").status_code == 200  # still serving, still ready
            # The store can be marked down (a reconnect attempt) a moment before the batch is spooled.
            spool = tmp_path / "identity" / ".shipway" / "spool"
            wait_for(lambda: any(spool.glob("*.jsonl")), what="records spooled to local disk")

            proxy.start()  # the database comes back
            wait_for(lambda: len(stored_ids(postgres_url)) == 120, timeout=30, what="the spooled records")
    finally:
        assert server.stop() == 0
        proxy.stop()
    ids = set(stored_ids(postgres_url))
    assert ids == {f"before-{i}" for i in range(20)} | {f"during-{i}" for i in range(100)}


def test_serving_starts_while_the_store_is_down(postgres_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy(pg_target(postgres_url))  # not started: the port refuses connections
    server = start_server(SERVICES / "identity", tmp_path, store_url=with_port(postgres_url, proxy.port))
    try:
        for i in range(10):
            response = httpx.post(server.url + "/predict", json={"text": "x"}, headers={"x-request-id": f"cold-{i}"})
            assert response.status_code == 200
        assert server.stop() == 0  # a graceful stop spools what the store did not take
        proxy.start()
        # the next process replays the spool left behind
        again = start_server(SERVICES / "identity", tmp_path, store_url=with_port(postgres_url, proxy.port))
        wait_for(lambda: len(stored_ids(postgres_url)) == 10, timeout=30, what="the replay by the next process")
        assert again.stop() == 0
    finally:
        proxy.stop()
    assert set(stored_ids(postgres_url)) == {f"cold-{i}" for i in range(10)}
