"""Every error shipway raises, rooted at one class.

    ShipwayError
    ├── ConfigError          a setting or shipway.toml is wrong
    │   ├── SuiteError       a validation suite or an expectation is invalid (file:line first)
    │   ├── TemplateError    `shipway new` or `update` cannot go on (a bad choice, a dirty tree...)
    │   ├── TargetError      the service to validate cannot be loaded or reached
    │   ├── AlertError       an alert rules file is invalid (file:line first, every problem listed)
    │   └── RecipeError      an unknown recipe or parameter, or a recipe's library is missing
    ├── ServiceError         service.py does not follow the protocol
    │   └── LoadError        load() failed or its artifacts are missing
    │       └── ArtifactError    artifacts that do not match their manifest, or outside deploy.root
    ├── InputError           an input does not match the input schema (4xx)
    │   └── PayloadError     a body that is not JSON or is too large
    ├── PredictError         user code raised inside a stage or predict (500)
    ├── OutputError          predict returned what the output schema rejects (500)
    ├── GateFailed           a candidate model or rules failed the validation suites
    ├── PredictTimeout       predict took longer than its timeout (504)
    ├── Overloaded           the queue cannot be served within its wait (503)
    ├── RulesError           a rules file is invalid; `diagnostics` lists why
    ├── DriftError           a drift profile is missing, damaged or of another version, or a window is empty
    ├── DataError            a dataset cannot be read, built or used (a bad path or format, no label column...)
    ├── RunError             a tracked run cannot start or be reproduced, or its step made no model
    ├── WorkerError          a worker process of an offline job (`--jobs N`) stopped before it finished its part
    ├── RegistryError        an unknown model version or alias, or an alias it may not take
    ├── DeployError          an image cannot be built, or Kubernetes manifests rendered or applied
    ├── RolloutError         a rollout command that cannot go on (none running, another one running)
    └── StoreError           the store failed
        ├── StoreUnavailable the store cannot be reached right now
        └── ExportError      the log's Parquet export cannot be written or read

Messages name the thing, show the bad value, and say how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AlertError",
    "ArtifactError",
    "ConfigError",
    "DataError",
    "DeployError",
    "DriftError",
    "ExportError",
    "GateFailed",
    "InputError",
    "LoadError",
    "OutputError",
    "Overloaded",
    "PayloadError",
    "PredictError",
    "PredictTimeout",
    "RecipeError",
    "RegistryError",
    "RolloutError",
    "RulesError",
    "RunError",
    "ServiceError",
    "ShipwayError",
    "StoreError",
    "StoreUnavailable",
    "SuiteError",
    "TargetError",
    "TemplateError",
    "WorkerError",
]


class ShipwayError(Exception):
    """The root of every error shipway raises on purpose."""


class ConfigError(ShipwayError):
    """A setting, a flag or shipway.toml holds a value shipway cannot use."""


class SuiteError(ConfigError):
    """A validation suite file, or an expectation, that shipway cannot use.

    The message starts with `file:line:` when the problem comes from a file.
    """


class TemplateError(ConfigError):
    """`shipway new` or `shipway update` cannot go on: a bad choice or name, a folder that
    exists, a project that is not under git or has uncommitted changes, a template version
    that cannot be found."""


class TargetError(ConfigError):
    """The service a validation suite runs against cannot be loaded or reached."""


class AlertError(ConfigError):
    """An alert rules file (alerts.yaml) that shipway cannot use.

    `problems` lists every problem found, each starting with `file:line:`; the
    message prints them one per line.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class ServiceError(ShipwayError):
    """A service definition breaks the protocol (no predict, bad signature...)."""


class LoadError(ServiceError):
    """load() raised, or the artifacts it needs are missing."""


class ArtifactError(LoadError):
    """An artifacts folder that is not loaded: a file differs from its sha256 in manifest.json, is
    missing or is not listed, the manifest's signature does not match, or the folder lies outside
    `deploy.root`. Nothing in the folder has been unpickled when it is raised."""


class InputError(ShipwayError):
    """An input fails the service's input schema.

    `details` lists one dict per problem: `loc` (the path to the field), `msg`,
    `type` and, where known, `input` (the bad value).
    """

    status = 422

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class PayloadError(InputError):
    """A request body that is not JSON, not the right shape, or too large."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class PredictError(ShipwayError):
    """User code raised inside a stage; `stage` names it."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"stage {stage!r} raised {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


class OutputError(ShipwayError):
    """predict returned a value the output schema rejects."""


class GateFailed(ShipwayError):
    """A candidate (new rules or a new model) failed the validation suites it is gated on;
    the live version keeps serving. `report` is the suites' JSON report."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report or {}


class PredictTimeout(ShipwayError):
    """A prediction did not finish within the configured timeout."""


class Overloaded(ShipwayError):
    """More requests are queued than can be served within the allowed wait."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RulesError(ShipwayError):
    """A rules file cannot be loaded: bad YAML, an unsafe or unknown expression,
    a field the schemas do not have, a hit policy violated at load time...

    `diagnostics` lists every problem found (errors and warnings), each with
    `file`, `line`, `column`, `severity` and `message`; the message prints one
    per line as `rules.yaml:12:7: error: ...`.
    """

    def __init__(self, message: str, diagnostics: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


class DriftError(ShipwayError):
    """Drift detection cannot go on: the reference profile is missing, damaged or written by
    another version of shipway, a profile cannot be built from the data given, or the window
    to compare holds no rows."""


class RecipeError(ConfigError):
    """A recipe that does not exist, a parameter it does not declare or of the wrong type, or a
    library it needs that is not installed (the message names the extra)."""


class RegistryError(ShipwayError):
    """A model version or alias that the registry does not hold, or an alias move it refuses
    (a run from dirty code to a production alias without --allow-dirty)."""


class DeployError(ShipwayError):
    """`shipway build` cannot write or build the image (no engine, a dependency not installed,
    a failed build), or `shipway deploy --to kubernetes` cannot render or apply its manifests."""


class RolloutError(ShipwayError):
    """A rollout command that cannot go on: promote or abort with no rollout running, a start
    while another candidate is rolling out, a plan step that cannot be taken."""


class DataError(ShipwayError):
    """A labelled dataset that `shipway inspect` cannot read or use (a missing file or column,
    a format it cannot tell, one class only, too few rows), or that `shipway data build`
    cannot build or register (the dataset step failed, no split files, no target column)."""


class RunError(ShipwayError):
    """A tracked run that cannot start or be reproduced (a commit or diff that does not apply,
    another dataset version), or whose training step wrote no model."""


class WorkerError(ShipwayError):
    """A worker process of an offline job (`shipway score --jobs N`) stopped before it finished
    its part of the dataset: a crash in the model's own code, or the system ran out of memory."""


class StoreError(ShipwayError):
    """The store failed: bad URL, schema mismatch, or a query error."""


class StoreUnavailable(StoreError):
    """The store cannot be reached now; callers may spool and retry later."""


class ExportError(StoreError):
    """The prediction log's Parquet export cannot be written or read: a damaged state file, a
    folder that is not writable, pyarrow or duckdb missing (docs/analysis.md)."""
