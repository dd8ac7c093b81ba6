"""Settings, declared once as data.

`SETTINGS` feeds the shipway.toml parser, the CLI flags, validation (core/setting_values.py)
and docs/settings.md (core/settings_page.py; a test keeps that page in step). Environment variables are
for secrets and deployment only: see `ENVIRONMENT`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipway.core.deploy_settings import BUILD_SETTINGS, ROLLOUT_SETTINGS
from shipway.core.monitoring_settings import MONITORING_SETTINGS
from shipway.core.setting import Setting
from shipway.core.setting_values import check_value, flatten, unknown_setting
from shipway.errors import ConfigError

__all__ = ["BY_KEY", "ENVIRONMENT", "SETTINGS", "Setting", "Settings", "load_settings"]


SETTINGS: tuple[Setting, ...] = (
    Setting("name", str, "", "Service name, shown in logs, metrics and the store. Default: the project folder's name."),
    Setting(
        "service", str, "service.py", "The file (relative to the project) or dotted module that defines predict()."
    ),
    Setting(
        "artifacts",
        str,
        "artifacts",
        "Folder passed to load(); its manifest.json gives the model, dataset and run ids.",
    ),
    Setting(
        "deploy.root",
        str,
        "",
        "Folder under which `shipway deploy` and POST /admin/model may find artifacts folders (symbolic links resolved); any other folder is refused before it is read. Empty: the folder that holds `artifacts` (the project folder by default).",
    ),
    Setting(
        "deploy.parity_tolerance",
        float,
        1e-6,
        "The parity gate: how far a score (a number that is not an integer) in the candidate's answer to a "
        "held-out example may be from the answer its training run recorded; labels (text, integers, "
        "booleans) must match exactly.",
        minimum=0,
    ),
    Setting(
        "deploy.parity_examples",
        int,
        10_000,
        "How many held-out examples (the first of the test split, else the validation split) `shipway train` "
        "and `shipway try` record the model's answers to, for the parity gate.",
        minimum=1,
    ),
    Setting(
        "version",
        str,
        "",
        "Model version tag. Default: `version` in artifacts/manifest.json, else a hash of the artifacts.",
    ),
    Setting(
        "mode",
        str,
        "on",
        "on: serve the model's answers; shadow: predict and log, but answer with `default` from service.py; off: answer `default` without calling the model.",
        flag="--mode",
        choices=("on", "shadow", "off"),
    ),
    Setting("serve.host", str, "127.0.0.1", "Address to listen on; 0.0.0.0 in a container.", flag="--host"),
    Setting("serve.port", int, 8000, "TCP port to listen on.", flag="--port", minimum=0, maximum=65535),
    Setting(
        "serve.workers",
        int,
        1,
        "Worker processes. A worker that dies is replaced.",
        flag="--workers",
        minimum=1,
        maximum=256,
    ),
    Setting(
        "serve.preload",
        bool,
        True,
        "Run load() once before forking so workers share the model's memory. Turn off for models that are not fork-safe.",
        flag="--preload/--no-preload",
    ),
    Setting("serve.max_body_bytes", int, 1_048_576, "Largest request body accepted; larger ones get 413.", minimum=1),
    Setting(
        "serve.predict_timeout_s",
        float,
        10.0,
        "A prediction that takes longer gets 504.",
        flag="--predict-timeout",
        minimum=0.001,
    ),
    Setting(
        "serve.graceful_timeout_s",
        float,
        30.0,
        "On SIGTERM, how long in-flight requests may take to finish.",
        minimum=0,
    ),
    Setting(
        "serve.access_log",
        bool,
        False,
        "Log one JSON line per request (costs throughput).",
        flag="--access-log/--no-access-log",
    ),
    Setting(
        "batching.max_batch_size",
        int,
        64,
        "Most items run in one call of predict_batch (services that define it).",
        flag="--max-batch-size",
        minimum=1,
    ),
    Setting(
        "batching.max_wait_ms",
        float,
        2.0,
        "Longest an item waits for company when the model is idle but more items are expected (the last "
        "batch had several); a lone request never waits. Services without predict_batch never wait.",
        flag="--max-wait-ms",
        minimum=0,
    ),
    Setting(
        "batching.inline",
        bool,
        False,
        "Run a lone request's predict (nothing else queued or running) on the event loop instead of the "
        "predict thread, saving two thread wake-ups. While it runs the worker answers nothing else and "
        "serve.predict_timeout_s cannot answer 504 (a hang ends at the worker timeout): for fast models "
        "that cannot hang.",
        flag="--inline/--no-inline",
    ),
    Setting(
        "batching.max_queue_wait_ms",
        float,
        1000.0,
        "Requests whose expected queue wait exceeds this get 503 with Retry-After instead of waiting.",
        minimum=1,
    ),
    Setting("batching.max_queue", int, 10_000, "Hard cap on queued items per worker; beyond it, 503.", minimum=1),
    Setting("log.enabled", bool, True, "Record predictions in the store's prediction log.", flag="--log/--no-log"),
    Setting("log.sample_rate", float, 1.0, "Share of predictions logged, 0 to 1.", minimum=0, maximum=1),
    Setting("log.retention_days", int, 0, "Drop the store's log entries of days older than this (0: keep).", minimum=0),
    Setting("log.archive_dir", str, "", "Write what log retention drops here as Parquet first (empty: no)."),
    Setting(
        "log.flush_interval_s",
        float,
        0.5,
        "How often logged predictions are written; a hard kill loses at most this much.",
        minimum=0.01,
        maximum=1.0,
    ),
    Setting(
        "log.spool_dir", str, ".shipway/spool", "Where predictions wait on local disk while the store is unreachable."
    ),
    Setting(
        "log.writer",
        str,
        "thread",
        "Where each worker's log is written: a thread of the worker, or a writer process of its own (no GIL "
        "shared with the requests: a shorter latency tail and a hard kill loses less, for more CPU per "
        "request; docs/store.md).",
        choices=("process", "thread"),
    ),
    Setting(
        "rules.file",
        str,
        "",
        "The rules file (YAML, docs/rules.md) applied after predict when the store has no rules history for this service yet. Empty: no rules.",
    ),
    Setting(
        "rules.watch",
        bool,
        False,
        "Reload rules.file when it changes; a file that fails its checks is refused and the old rules keep serving.",
        flag="--watch-rules/--no-watch-rules",
    ),
    Setting(
        "rules.poll_s",
        float,
        1.0,
        "How often each worker looks for newly applied rules in the store, so that every worker and replica swaps.",
        minimum=0.05,
    ),
    Setting(
        "validation.suites",
        str,
        "validation",
        "The folder (or file) of validation suites that gate rule and model updates.",
    ),
    Setting(
        "validation.gate",
        bool,
        True,
        "Refuse new rules or a new model unless the validation suites pass against it (when suites exist).",
        flag="--gate/--no-gate",
    ),
    Setting(
        "store.url",
        str,
        "sqlite:///.shipway/shipway.db",
        "The store: sqlite:///file.db (embedded, default) or postgresql://user@host/db. Env SHIPWAY_STORE_URL overrides.",
        flag="--store",
    ),
    Setting(
        "export.dir",
        str,
        ".shipway/export",
        "Where `shipway export` writes the log as Parquet files (docs/analysis.md).",
    ),
    Setting("export.interval_s", float, 10.0, "How often the export runs (--follow, in_serve).", minimum=0.1),
    Setting("export.in_serve", bool, False, "Export on a thread of `shipway serve`; one worker of one replica works."),
    Setting(
        "export.read",
        bool,
        True,
        "Read drift windows, backtests and the slowest predictions from the Parquet export when it covers the window.",
    ),
    Setting(
        "export.retention_days",
        int,
        0,
        "Drop exported days older than this many days (0 keeps them all).",
        minimum=0,
    ),
    Setting(
        "export.archive_dir",
        str,
        "",
        "Move days that retention drops into this folder instead of deleting them. Empty: delete.",
    ),
    *MONITORING_SETTINGS,
    *ROLLOUT_SETTINGS,
    Setting(
        "data.command",
        str,
        "python data.py",
        "The dataset step `shipway data build` runs in the project folder; it writes the dataset into `data.dir`.",
    ),
    Setting(
        "data.dir",
        str,
        "build/dataset",
        "The folder the dataset step writes: one file per split (train, valid, test), CSV or JSON lines.",
    ),
    Setting("data.dataset", str, "", "The dataset's name in the store. Default: the `name` setting."),
    Setting("data.target", str, "label", "The column the model learns to predict (the task's target)."),
    Setting(
        "data.metric",
        str,
        "accuracy",
        "The task's metric: the one runs on this dataset are compared by (the name the training step logs it under, after its split, e.g. valid_accuracy).",
    ),
    Setting(
        "train.command",
        str,
        "python train.py",
        "The training step `shipway train` runs in the project folder as a tracked run.",
    ),
    Setting(
        "experiments.objects",
        str,
        ".shipway/objects",
        "The artifact folder: datasets' and runs' files by SHA-256. A shared path for a team.",
    ),
    Setting(
        "experiments.flush_interval_s",
        float,
        1.0,
        "How often a run's logged parameters and metrics are written to the store; a hard kill loses at most this much.",
        minimum=0.0,
    ),
    Setting(
        "experiments.mlflow_uri",
        str,
        "",
        "An MLflow tracking server to copy each finished run to (needs pip install 'shipway[mlflow]'); empty: no copy.",
    ),
    *BUILD_SETTINGS,
)

ENVIRONMENT: dict[str, str] = {
    "SHIPWAY_STORE_URL": "Overrides store.url (keep database passwords out of shipway.toml).",
    "SHIPWAY_ADMIN_TOKEN": "Bearer token that admin operations require; the dashboard requires it too when set (without it, the dashboard answers loopback clients only).",
    "SHIPWAY_FEEDBACK_TOKEN": "Bearer token that POST /feedback requires (when unset, SHIPWAY_ADMIN_TOKEN does if set).",
    "SHIPWAY_MANIFEST_KEY": "HMAC-SHA256 key that signs artifacts/manifest.json when it is written; when set, every load refuses a manifest it did not sign (docs/security.md).",
    "SHIPWAY_MANIFEST_KEY_PREVIOUS": "The signing key before the last rotation: manifests it signed still load while models are signed again (docs/security.md).",
    "SHIPWAY_MANIFEST_PRIVATE_KEY": "Ed25519 private key (PEM, or its file's path) that signs artifacts/manifest.json where models are trained; needs shipway[signing] (docs/security.md).",
    "SHIPWAY_MANIFEST_PUBLIC_KEYS": "Ed25519 public keys (PEM, or their files' paths) that verify manifest signatures where models are served; when set, every load refuses a manifest none of them signed (docs/security.md).",
}

BY_KEY = {s.key: s for s in SETTINGS}


class Settings(Mapping[str, Any]):
    """Validated values for every setting, by dotted key, plus the project folder."""

    def __init__(self, values: dict[str, Any], root: Path) -> None:
        self._values = values
        self.root = root

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def path(self, key: str) -> Path:
        """A path setting resolved against the project folder."""
        return (self.root / self[key]).resolve()

    def replace(self, **overrides: Any) -> Settings:
        """A copy with `serve__port=...`-style overrides (double underscore for the dot)."""
        values = dict(self._values)
        for name, value in overrides.items():
            key = name.replace("__", ".")
            values[key] = check_value(BY_KEY[key], value, "override")
        return Settings(values, self.root)


def load_settings(root: Path, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults, then shipway.toml in `root`, then env, then `overrides` (CLI flags)."""
    values = {s.key: s.default for s in SETTINGS}
    file = root / "shipway.toml"
    if file.exists():
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{file} is not valid TOML: {err}. Fix the syntax at that line.") from err
        for key, value in flatten(data, BY_KEY):
            setting = BY_KEY.get(key)
            if setting is None:
                raise ConfigError(unknown_setting(key, file, BY_KEY))
            values[key] = check_value(setting, value, str(file))
    if os.environ.get("SHIPWAY_STORE_URL"):
        values["store.url"] = os.environ["SHIPWAY_STORE_URL"]
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in BY_KEY:
            raise ConfigError(unknown_setting(key, "the overrides", BY_KEY))
        values[key] = check_value(BY_KEY[key], value, "the command line")
    if not values["name"]:
        values["name"] = root.resolve().name
    return Settings(values, root.resolve())
