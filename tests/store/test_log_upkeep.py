"""The log's upkeep (export and retention) by one process at a time: a file lock among the
processes of a machine, PostgreSQL's advisory lock among replicas; and the export inside a real
`shipway serve` with two workers, exactly once, stopping cleanly on SIGTERM."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import httpx
import pytest
from conftest import SERVICES, start_server
from store_fixtures import make_record, wait_for

from shipway.store import open_store
from shipway.store.columnar import LogSchema, read_state
from shipway.store.log_upkeep import Upkeep
from shipway.store.provider import StoreProvider

pytest.importorskip("pyarrow")

pytest_plugins = ["store_fixtures"]

SCHEMA = LogSchema.from_json_schemas(
    {"type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "integer"}}},
    {"type": "object", "properties": {"label": {"type": "string"}, "score": {"type": "number"}}},
)


def _upkeep(url: str, root: Path, lock_dir: Path | None = None) -> Upkeep:
    return Upkeep(StoreProvider(url), SCHEMA, export_dir=root, lock_dir=lock_dir or root)


def _close(*upkeeps: Upkeep) -> None:
    """Each upkeep's locks, then its store: the upkeep leaves that to the provider's owner."""
    for upkeep in upkeeps:
        upkeep.close()
        upkeep.stores.close()


def _exported(root: Path) -> int:
    state = read_state(root)
    return state.rows if state is not None else 0


def test_one_process_exports_and_another_takes_over_when_it_stops(store_url: str, tmp_path: Path) -> None:
    root = tmp_path / "export"
    first, second = _upkeep(store_url, root), _upkeep(store_url, root)
    with open_store(store_url, tmp_path) as store:
        store.write_predictions([make_record(i) for i in range(50)])
        try:
            turn = first()
            assert turn.leader and turn.export is not None and turn.export.rows == 50
            assert not second().leader  # the file lock is held
            store.write_predictions([make_record(i) for i in range(50, 80)])
            assert first().export.rows == 30  # type: ignore[union-attr]  # the holder keeps it between turns
            first.close()
            store.write_predictions([make_record(i) for i in range(80, 90)])
            turn = second()
            assert turn.leader and turn.export is not None and turn.export.rows == 10
            assert _exported(root) == 90
        finally:
            _close(first, second)


def test_replicas_on_postgresql_take_turns_by_the_advisory_lock(postgres_url: str, tmp_path: Path) -> None:
    # Each replica has its own lock folder (its own machine), one export folder is shared.
    root = tmp_path / "export"
    a = _upkeep(postgres_url, root, tmp_path / "replica-a")
    b = _upkeep(postgres_url, root, tmp_path / "replica-b")
    try:
        assert a().leader
        assert not b().leader
        assert a().leader  # still held, and taken once: a release below frees it
        a.close()
        assert b().leader
    finally:
        _close(a, b)


def test_a_stopped_upkeep_exports_nothing_more(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    upkeep = _upkeep(url, tmp_path / "export")
    with open_store(url) as store:
        store.write_predictions([make_record(i) for i in range(5)])
    upkeep.stop()
    try:
        turn = upkeep()
        assert turn.leader and turn.export is None
    finally:
        _close(upkeep)


def test_serve_exports_on_a_thread_exactly_once_and_stops_on_sigterm(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(SERVICES / "identity", tmp_path / "identity"))
    (folder / "shipway.toml").write_text('name = "identity"\n\n[export]\nin_serve = true\ninterval_s = 0.2\n')
    server = start_server(folder, tmp_path, "--workers", "2")
    root = folder / ".shipway" / "export"
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(200):
                assert client.post("/predict", json={"text": f"t{i}"}).status_code == 200
        wait_for(lambda: _exported(root) == 200, what="the 200 predictions exported by the server")
    finally:
        assert server.stop(signal.SIGTERM) == 0
    assert "Traceback" not in server.log
    pq = pytest.importorskip("pyarrow.parquet")
    files = sorted(root.glob("predictions/*/*/part-*.parquet"))
    texts = sorted(t for f in files for t in pq.read_table(f).column("input.text").to_pylist())
    assert texts == sorted(f"t{i}" for i in range(200))  # each once: one worker exported
    with open_store(server.store_url) as store:
        assert store.count_predictions() == 200


def test_a_one_shot_export_while_another_process_exports_says_so(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from shipway.cli import main as cli

    folder = Path(shutil.copytree(SERVICES / "identity", tmp_path / "identity"))
    url = f"sqlite:///{tmp_path / 'log.db'}"
    holder = _upkeep(url, folder / ".shipway" / "export")
    try:
        assert holder().leader
        result = CliRunner().invoke(cli, ["export", str(folder), "--store", url])
        assert result.exit_code == 1
        assert "another process exports into" in result.output and "--dir" in result.output
    finally:
        _close(holder)
    again = CliRunner().invoke(cli, ["export", str(folder), "--store", url])
    assert again.exit_code == 0, again.output


def test_the_upkeep_works_on_the_providers_handle_and_leaves_it_open(tmp_path: Path) -> None:
    stores = StoreProvider(f"sqlite:///{tmp_path / 'log.db'}")
    store = stores.get()
    store.write_predictions([make_record(i) for i in range(7)])
    upkeep = Upkeep(stores, SCHEMA, export_dir=tmp_path / "export", lock_dir=tmp_path / "export")
    try:
        turn = upkeep()
        assert turn.leader and turn.export is not None and turn.export.rows == 7
    finally:
        upkeep.close()
    assert stores.get() is store and store.count_predictions() == 7  # the one handle, still open
    stores.close()  # its owner closes it; the next turn opens the provider's new one
    store = stores.get()
    store.write_predictions([make_record(i) for i in range(7, 10)])
    try:
        assert upkeep().export.rows == 3  # type: ignore[union-attr]
    finally:
        upkeep.close()
        stores.close()
