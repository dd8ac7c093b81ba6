"""The model registry: versions named by their files' digest, aliases with history, the dirty
guard on production aliases, deploy by alias; the store tables on both backends."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from recipe_projects import text_project

from shipway.cli.main import main as cli
from shipway.errors import RegistryError
from shipway.store import open_store
from shipway.store.registry import ModelVersion

pytest_plugins = ["store_fixtures"]


def test_versions_and_aliases_in_the_store(store_url: str) -> None:
    with open_store(store_url) as store:
        files = {"model.skops": {"digest": "a" * 64, "size": 3}}
        first = store.register_model_version(ModelVersion("tfidf-lr-aaaa", "a" * 64, run_id="r1", files=files))
        again = store.register_model_version(ModelVersion("tfidf-lr-aaaa", "a" * 64, run_id="other"))
        assert again.run_id == "r1" and again.files == files and first.created == again.created  # immutable
        store.register_model_version(ModelVersion("tfidf-lr-bbbb", "b" * 64, dirty=True))
        assert store.get_model_version("tfidf-lr-b").version == "tfidf-lr-bbbb"
        with pytest.raises(RegistryError, match="several model versions match 'tfidf-lr'"):
            store.get_model_version("tfidf-lr")
        first_move = store.set_alias("champion", "tfidf-lr-aaaa", "ana")
        second = store.set_alias("champion", "tfidf-lr-bbbb", "bo", note="better")
        assert first_move.previous is None and second.previous == "tfidf-lr-aaaa"
        assert store.get_alias("champion") == "tfidf-lr-bbbb" and store.list_aliases() == {"champion": "tfidf-lr-bbbb"}
        history = store.alias_history("champion")
        assert [(m.version, m.who, m.note) for m in history] == [
            ("tfidf-lr-bbbb", "bo", "better"),
            ("tfidf-lr-aaaa", "ana", None),
        ]
        with pytest.raises(RegistryError, match="no model version 'nope'"):
            store.set_alias("challenger", "nope", "ana")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_register_alias_deploy_by_alias_and_the_dirty_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = text_project(tmp_path)
    _git(root, "init", "-q")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "service.py", "shipway.toml")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "project")
    monkeypatch.setenv("SHIPWAY_ACTOR", "ana")
    runner = CliRunner()
    assert runner.invoke(cli, ["try", "tfidf-nb", "--target", str(root)]).exit_code == 0
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        [run] = store.list_runs()
    registered = runner.invoke(cli, ["models", "register", run.id[:8], "--target", str(root), "--json"])
    assert registered.exit_code == 0, registered.output
    version = json.loads(registered.stdout)
    # The version is named as the manifest names the model, so what serves is recorded against it.
    assert version["version"] == run.model_version and version["run_id"] == run.id
    assert version["dataset_version"] == run.dataset_version and version["created_by"] == "ana"
    # The dataset folder is untracked: the run's code was dirty, so champion is refused.
    assert version["dirty"] is True
    refused = runner.invoke(cli, ["models", "alias", "champion", version["version"], "--target", str(root)])
    assert refused.exit_code == 1 and "uncommitted changes" in refused.output and "--allow-dirty" in refused.output
    assert (
        runner.invoke(cli, ["models", "alias", "challenger", version["version"], "--target", str(root)]).exit_code == 0
    )
    moved = runner.invoke(
        cli, ["models", "alias", "champion", "challenger", "--target", str(root), "--allow-dirty", "--note", "demo"]
    )
    assert moved.exit_code == 0 and f"champion -> {version['version']}" in moved.output
    deployed = runner.invoke(cli, ["deploy", "champion", "--target", str(root), "--no-gate"])
    assert deployed.exit_code == 0, deployed.output
    folder = root / ".shipway" / "models" / version["version"]
    assert f"deployed model {version['version']} from {folder}" in deployed.output
    shown = json.loads(runner.invoke(cli, ["models", "show", "champion", "--target", str(root), "--json"]).stdout)
    assert shown["aliases"] == ["challenger", "champion"] and shown["run_id"] == run.id
    assert [m["alias"] for m in shown["alias_history"]] == ["champion", "challenger"]
    assert shown["alias_history"][0]["note"] == "demo; dirty code allowed"
    assert [d["artifacts"] for d in shown["deployments"]] == [str(folder)]
    assert shown["live"] == {"requests": 0, "errors": 0, "labelled": 0, "accuracy": None}
    listed = runner.invoke(cli, ["models", "list", "--target", str(root)])
    assert "challenger, champion" in listed.output and "+dirty" in listed.output
    unknown = runner.invoke(cli, ["deploy", "nothing-here", "--target", str(root)])
    assert unknown.exit_code == 1 and "no model version 'nothing-here'" in unknown.output


def test_the_admin_endpoint_deploys_an_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    from conftest import start_server

    (tmp_path / "topics").mkdir()
    root = text_project(tmp_path / "topics")
    runner = CliRunner()
    assert runner.invoke(cli, ["try", "tfidf-nb", "--target", str(root)]).exit_code == 0
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        [run] = store.list_runs()
    version = json.loads(runner.invoke(cli, ["models", "register", run.id, "--target", str(root), "--json"]).stdout)
    assert (
        runner.invoke(cli, ["models", "alias", "challenger", version["version"], "--target", str(root)]).exit_code == 0
    )
    # The service starts on the try's own folder; deploy.root is the project, where checkouts go.
    (root / "shipway.toml").write_text(
        f'name = "topics"\nartifacts = ".shipway/tries/{run.id}"\n\n[data]\ntarget = "category"\n\n[deploy]\nroot = "."\n'
    )
    store_url = f"sqlite:///{root / '.shipway' / 'shipway.db'}"
    server = start_server(str(root), tmp_path, store_url=store_url, env={"SHIPWAY_ADMIN_TOKEN": "t"})
    auth = {"authorization": "Bearer t"}
    try:
        response = httpx.post(server.url + "/admin/model", json={"artifacts": "challenger"}, headers=auth, timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["applied"]["version"] == version["version"]
        assert response.json()["applied"]["artifacts"] == str(root / "models" / version["version"])
        answer = httpx.post(server.url + "/predict", json={"text": "refund my money"}, timeout=60)
        assert answer.status_code == 200 and answer.json()["topic"] == "refund"
        missing = httpx.post(server.url + "/admin/model", json={"artifacts": "nobody"}, headers=auth, timeout=60)
        assert missing.status_code == 404 and "no model version 'nobody'" in missing.json()["error"]["message"]
    finally:
        server.kill()


def test_a_version_7_sqlite_store_gets_the_registry_tables(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with open_store(f"sqlite:///{path}"):
        pass
    conn = sqlite3.connect(path)
    for table in ("model_alias_history", "model_aliases", "model_versions", "model_candidates", "annotations"):
        conn.execute(f"DROP TABLE {table}")
    # Step 9 comes back too: the log's mode column, with the view that shows it.
    conn.execute("DROP VIEW predictions")
    conn.execute("ALTER TABLE contexts DROP COLUMN mode")
    conn.execute("CREATE VIEW predictions AS SELECT 1 AS id")
    conn.execute("DELETE FROM schema_version WHERE version >= 8")  # and the later steps' tables
    conn.commit()
    conn.close()
    with open_store(f"sqlite:///{path}") as store:
        store.register_model_version(ModelVersion("m-1", "c" * 64))
        assert store.get_model_version("m-1").digest == "c" * 64
