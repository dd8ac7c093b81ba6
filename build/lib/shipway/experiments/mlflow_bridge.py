"""Copy a finished run to an MLflow tracking server, for teams that already run MLflow.

The run keeps living in shipway's store; MLflow gets a copy when it ends: the parameters,
every logged metric value (with its step and time), the artifacts, and tags for the
dataset version, the task, the commit and the shipway run id. Needs the `mlflow` package
(`pip install 'shipway[mlflow]'`), imported only here.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from shipway.errors import ConfigError
from shipway.store.base import Store
from shipway.store.objects import ObjectStore

__all__ = ["log_to_mlflow", "safe_log_to_mlflow"]

log = logging.getLogger("shipway.experiments")

# MLflow's own limits for one log_batch call, and for a parameter's value.
_BATCH_METRICS = 1000
_BATCH_PARAMS = 100
_PARAM_CHARS = 6000
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "running": "RUNNING"}


def _client(uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as err:
        raise ConfigError(
            f"experiments.mlflow_uri is {uri!r}, but the mlflow package is not installed ({err}); "
            "install it with pip install 'shipway[mlflow]', or empty the setting"
        ) from None
    return MlflowClient(tracking_uri=uri)


def log_to_mlflow(store: Store, objects: ObjectStore, run_id: str, uri: str) -> str:
    """Copy run `run_id` to the MLflow server at `uri`, in the experiment named after the
    project; return the MLflow run id."""
    from mlflow.entities import Metric, Param, RunTag

    client = _client(uri)
    run = store.get_run(run_id)
    experiment = client.get_experiment_by_name(run.project)
    experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(run.project)
    tags = {
        "shipway.run_id": run.id,
        "shipway.dataset_version": run.dataset_version or "",
        "shipway.task": run.task or "",
        "shipway.dirty": str(run.dirty),
        "shipway.model_version": run.model_version or "",
        "mlflow.source.git.commit": run.code_commit or "",
        "mlflow.runName": run.name or run.id[:12],
        **{f"shipway.tag.{k}": v for k, v in run.tags.items()},
    }
    created = client.create_run(experiment_id, start_time=int(run.started * 1000), tags=tags)
    mlflow_id = created.info.run_id
    params = [Param(k, _param(v)) for k, v in sorted(run.params.items())]
    for start in range(0, len(params), _BATCH_PARAMS):
        client.log_batch(mlflow_id, params=params[start : start + _BATCH_PARAMS])
    metrics = [
        Metric(key, point.value, int(point.ts * 1000), point.step)
        for key in sorted(run.metrics)
        for point in store.metric_history(run.id, key)
    ]
    for start in range(0, len(metrics), _BATCH_METRICS):
        client.log_batch(mlflow_id, metrics=metrics[start : start + _BATCH_METRICS])
    if run.artifacts:
        with tempfile.TemporaryDirectory(prefix="shipway-mlflow-") as tmp:
            for name, ref in run.artifacts.items():
                objects.copy_to(ref.digest, Path(tmp) / name)
            client.log_artifacts(mlflow_id, tmp)
    if run.error:
        client.log_batch(mlflow_id, tags=[RunTag("shipway.error", run.error[:5000])])
    end = int((run.ended or run.started) * 1000)
    client.set_terminated(mlflow_id, status=_STATUS.get(run.status, "FINISHED"), end_time=end)
    return str(mlflow_id)


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:_PARAM_CHARS]


def safe_log_to_mlflow(store: Store, objects: ObjectStore, run_id: str, uri: str) -> str | None:
    """`log_to_mlflow`, with a failure logged as a warning: the run is stored in shipway either way."""
    try:
        return log_to_mlflow(store, objects, run_id, uri)
    except ConfigError:
        raise
    except Exception as err:  # MLflow raises its own exceptions and requests' ones
        log.warning("could not copy run %s to MLflow at %s: %s: %s", run_id, uri, type(err).__name__, err)
        return None
