"""The MLflow bridge against a real `mlflow server` on 127.0.0.1 with a SQLite backend."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from store_fixtures import free_port, wait_for

import shipway

pytest.importorskip("mlflow", reason="the MLflow bridge test needs mlflow: pip install 'shipway[mlflow]'")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    mlflow_cli = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    process = subprocess.Popen(
        [
            mlflow_cli,
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the server's workers share its process group, stopped together
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _healthy(url), timeout=180, what="mlflow server")
        assert process.poll() is None, "mlflow server exited"
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_a_run_is_copied_to_mlflow_with_params_metrics_artifacts_and_tags(tmp_path: Path, mlflow_server: str) -> None:
    from mlflow.tracking import MlflowClient

    (tmp_path / "shipway.toml").write_text(f'name = "bridged"\n\n[experiments]\nmlflow_uri = "{mlflow_server}"\n')
    (tmp_path / "model.bin").write_bytes(b"weights")
    with shipway.run(tmp_path, name="to-mlflow", dataset_version="abc123") as run:
        run.configure({"C": 2.0})
        for step in range(3):
            run.log_metric("loss", 1.0 / (step + 1))
        run.log_metric("valid_accuracy", 0.75)
        run.log_artifact(tmp_path / "model.bin")
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("bridged")
    assert experiment is not None
    [copied] = client.search_runs([experiment.experiment_id])
    assert copied.info.status == "FINISHED"
    assert copied.data.params == {"C": "2.0"}
    assert copied.data.metrics == {"loss": pytest.approx(1 / 3), "valid_accuracy": 0.75}
    assert [m.step for m in client.get_metric_history(copied.info.run_id, "loss")] == [0, 1, 2]
    tags = copied.data.tags
    assert tags["shipway.run_id"] == run.id and tags["shipway.dataset_version"] == "abc123"
    assert tags["mlflow.runName"] == "to-mlflow"
    assert [a.path for a in client.list_artifacts(copied.info.run_id)] == ["model.bin"]
