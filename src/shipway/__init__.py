"""shipway: from a scientist's predict() to a production model service.

import shipway
pipeline = shipway.Service(predict).setup()
pipeline.run({"text": "hello"})

with shipway.run(name="try") as run:   # a tracked run (docs/experiments.md)
    run.log_metric("valid_accuracy", 0.91)
"""

from shipway.core.artifacts import verify_artifacts, write_manifest
from shipway.core.pipeline import Pipeline
from shipway.core.service import Service
from shipway.core.settings import Settings, load_settings
from shipway.core.stage import Stage
from shipway.core.trace import StageRecord, Trace
from shipway.errors import (
    ArtifactError,
    ConfigError,
    InputError,
    LoadError,
    OutputError,
    Overloaded,
    PayloadError,
    PredictError,
    PredictTimeout,
    ServiceError,
    ShipwayError,
    StoreError,
    StoreUnavailable,
)
from shipway.experiments.split_descriptions import write_split
from shipway.experiments.tracking import Run, active_run, run, start_run

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "ConfigError",
    "InputError",
    "LoadError",
    "OutputError",
    "Overloaded",
    "PayloadError",
    "Pipeline",
    "PredictError",
    "PredictTimeout",
    "Run",
    "Service",
    "ServiceError",
    "Settings",
    "ShipwayError",
    "Stage",
    "StageRecord",
    "StoreError",
    "StoreUnavailable",
    "Trace",
    "__version__",
    "active_run",
    "load_settings",
    "run",
    "start_run",
    "verify_artifacts",
    "write_manifest",
    "write_split",
]
