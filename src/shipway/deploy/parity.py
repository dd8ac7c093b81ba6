"""The parity gate: a model version answers its held-out examples as its training run recorded.

Before a version takes traffic, its artifacts (verified against their manifest) are loaded
into the service's pipeline here, in the environment that will serve them, and run over the
held-out examples its training run answered (`held_out.jsonl`, core/held_out.py). Each answer
must match the recorded one: labels (text, integers, booleans) exactly, scores (other
numbers) within `deploy.parity_tolerance`. A mismatch is what preprocessing skew (the
service's stages changed since training) and library drift (another scikit-learn, numpy,
torch in the serving environment) look like; `parity_gate` refuses the version with the
first differing examples and the trace of each through the pipeline.

The comparison is of the model's answers, before any rules: rules are versioned apart from
the model and gated by the validation suites. The check itself is shipway.core.parity, which a
model swap through `POST /admin/model` runs too; this module builds the candidate for the
commands and finds a run's model folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shipway.core.artifacts import verify_artifacts
from shipway.core.parity import Difference, ParityReport, check_parity, first_difference
from shipway.core.pipeline import Pipeline
from shipway.errors import ArtifactError
from shipway.store.base import Store
from shipway.store.objects import ObjectStore

__all__ = [
    "Difference",
    "ParityReport",
    "candidate_pipeline",
    "check_parity",
    "first_difference",
    "parity_gate",
    "run_folder",
]


def candidate_pipeline(target: str | Path, artifacts: Path) -> Pipeline:
    """The candidate's pipeline, built as serving builds it (the project's service over these
    artifacts, verified before anything is loaded), without the rules."""
    from shipway.project import Project
    from shipway.rules.live import LiveRules

    project = Project.load(target)  # the one place that builds pipelines
    return project.build(LiveRules(), Path(artifacts).resolve())


def parity_gate(pipeline: Pipeline, artifacts: Path, tolerance: float) -> ParityReport:
    """`check_parity`, a mismatch refused by the project's gate policy (GateFailed, its report
    holding the differences)."""
    from shipway.project import enforce

    report = check_parity(pipeline, artifacts, tolerance)
    enforce(report)
    return report


def run_folder(store: Store, objects: ObjectStore, run_id: str, root: Path) -> Path:
    """The model folder a run recorded (its `artifacts/...` files) as `root/run-<id>`, verified."""
    run = store.get_run(run_id)
    prefix = "artifacts/"
    files = {name[len(prefix) :]: ref.digest for name, ref in run.artifacts.items() if name.startswith(prefix)}
    if not files:
        raise ArtifactError(
            f"run {run.id} recorded no model files (artifacts/...); pass a run of `shipway train` or `shipway try`."
        )
    folder = Path(root) / f"run-{run.id}"
    if folder.exists():
        shutil.rmtree(folder)  # written afresh: the run's files are the truth
    for name, digest in files.items():
        objects.copy_to(digest, folder / name)
    verify_artifacts(folder)
    return folder
