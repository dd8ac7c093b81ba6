"""`shipway reproduce RUN`: run a recorded run again from its own code, data and seeds.

The run's commit is checked out into a temporary git worktree and its recorded diff applied;
untracked files it had are copied in where the project still has them with the same
SHA-256 (and reported where not). The run's dataset version is rebuilt from the artifact
folder (or taken from `data.dir` if that holds the same version), the recorded overrides
and seeds are set, and the training step runs as a new tracked run whose `parent` is the
original (for a `shipway try` run, its recipe is fitted again with the recorded parameters and
seed). The report says whether every metric matches (exactly, or within a tolerance) and
lists every difference of code, data or environment that could explain a mismatch.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipway.core.service import load_project
from shipway.errors import RunError, ShipwayError
from shipway.experiments.compare import compare_runs, differences
from shipway.experiments.dataset_versions import content_version, materialize
from shipway.experiments.provenance import git
from shipway.experiments.training import absolute_store_url, train
from shipway.experiments.trying import Trial, try_recipes
from shipway.store.base import Store
from shipway.store.objects import ObjectStore, hash_file
from shipway.store.runs import RunRecord

__all__ = ["VARYING", "Reproduction", "reproduce"]

# Metrics that measure the machine, not the model: never expected to match.
VARYING = ("latency_", "train_seconds", "fit_seconds", "fit_cpu_seconds")


@dataclass
class Reproduction:
    """The outcome: the new run, each metric compared, and the differences found."""

    original: str
    run: str
    status: str
    tolerance: float
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.status == "finished" and all(m["match"] for m in self.metrics.values() if m["compared"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "run": self.run,
            "status": self.status,
            "matches": self.matches,
            "tolerance": self.tolerance,
            "metrics": self.metrics,
            "differences": self.differences,
            "notes": self.notes,
        }


def reproduce(
    run_id: str,
    project: Path,
    store: Store,
    objects: ObjectStore,
    store_url: str,
    *,
    tolerance: float = 0.0,
    keep: bool = False,
    echo: Callable[[str], None] | None = None,
) -> Reproduction:
    """Reproduce run `run_id` of the project in `project`; see the module's docstring."""
    say = echo or (lambda _: None)
    original = store.get_run(run_id)
    commit = original.code.get("commit")
    if not commit:
        raise RunError(
            f"run {original.id} cannot be reproduced: it was not recorded in a git repository "
            f"({original.code.get('note', 'no commit')}); commit the project to git and train again"
        )
    if not original.dataset_version:
        raise RunError(
            f"run {original.id} recorded no dataset version, so its data cannot be rebuilt; train it with `shipway train`"
        )
    top = git(Path(project), "rev-parse", "--show-toplevel").strip()
    if not top:
        raise RunError(f"{project} is not in a git repository; run `shipway reproduce` from the run's repository")
    repo = Path(top)
    notes: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="shipway-reproduce-"))
    tree = tmp / "tree"
    try:
        say(f"checking out {commit[:12]} into {tree}")
        _checkout(repo, commit, tree)
        if original.code.get("diff"):
            say("applying the run's uncommitted changes")
            _apply(tree, original.code["diff"], original.id)
        notes += _untracked(repo, tree, original.code.get("untracked", {}))
        sub = tree / original.code.get("project", ".")
        service, settings = load_project(sub)
        _dataset(original, store, objects, Path(project), settings.path("data.dir"), settings["data.dir"])
        if original.recipe:  # a `shipway try` run: the same recipe, parameters and seed, fitted again
            say(f"fitting recipe {original.recipe} again with seed {original.seeds.get('seed', 0)}")
            [record] = try_recipes(
                settings,
                service,
                store,
                objects,
                [Trial(original.recipe, original.overrides)],
                seed_values=[int(original.seeds.get("seed", 0))],
                parent=original.id,
                command=f"shipway reproduce {original.id}",
                echo=echo,
            )
        else:
            record = train(
                settings,
                service,
                store,
                objects,
                overrides=original.overrides,
                seeds=original.seeds,
                dataset_version=original.dataset_version,
                name=f"reproduce {original.id[:8]}",
                command=f"shipway reproduce {original.id}",
                parent=original.id,
                store_url=absolute_store_url(store_url, Path(project).resolve()),
                echo=echo,
            )
    finally:
        if keep:
            notes.append(f"the worktree is kept in {tree}")
        else:
            git(repo, "worktree", "remove", "--force", str(tree), check=False)
            shutil.rmtree(tmp, ignore_errors=True)
    result = Reproduction(original.id, record.id, record.status, tolerance, notes=notes)
    if record.status != "finished":
        result.notes.append(f"the reproduction failed: {record.error}")
    result.metrics = _compare_metrics(original, record, tolerance)
    comparison = compare_runs(original, record, repo)
    # The reproduction checks out the recorded commit and diff: a difference there is real.
    result.differences = differences(comparison)
    return result


def _checkout(repo: Path, commit: str, tree: Path) -> None:
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), commit], cwd=repo, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RunError(
            f"cannot check out the run's commit {commit} from {repo}: {done.stderr.strip()}; "
            "fetch the commit (git fetch) or reproduce from the repository the run came from"
        )


def _apply(tree: Path, diff: str, run_id: str) -> None:
    done = subprocess.run(
        ["git", "apply", "--binary", "--whitespace=nowarn", "-"], cwd=tree, input=diff, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RunError(
            f"the recorded uncommitted changes of run {run_id} do not apply to its commit: {done.stderr.strip()}"
        )


def _untracked(repo: Path, tree: Path, recorded: dict[str, str]) -> list[str]:
    """Copy the run's untracked files that the repository still has unchanged; report the others."""
    notes = []
    for name, digest in sorted(recorded.items()):
        source = repo / name
        if not source.is_file():
            notes.append(
                f"untracked file {name} (sha256 {digest[:12]}) is missing now; the reproduction runs without it"
            )
            continue
        found = hash_file(source)
        if found != digest:
            notes.append(
                f"untracked file {name} changed since the run: sha256 {digest[:12]} then, {found[:12]} now; the reproduction runs without it"
            )
            continue
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return notes


def _dataset(
    original: RunRecord, store: Store, objects: ObjectStore, project: Path, target: Path, setting: str
) -> None:
    """Put the run's dataset version into the worktree's data folder; RunError naming both
    versions if neither the artifact folder nor the project's data folder has it."""
    wanted = str(original.dataset_version)
    try:
        dataset = store.get_dataset(wanted)
        materialize(dataset, objects, target)
        return
    except ShipwayError as err:
        reason = str(err)
    here = project / setting
    try:
        found = content_version(here)
    except ShipwayError:
        found = "(none)"
    if found == wanted:
        shutil.copytree(here, target, dirs_exist_ok=True)
        return
    raise RunError(
        f"run {original.id} learnt from dataset version {wanted}, but {here} holds version {found} and the "
        f"store cannot rebuild {wanted} ({reason}); build that version again (`shipway data build` at the run's "
        f"commit) or point experiments.objects at the artifact folder that holds it"
    )


def _compare_metrics(original: RunRecord, new: RunRecord, tolerance: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(original.metrics) | set(new.metrics)):
        old, now = original.metrics.get(key), new.metrics.get(key)
        compared = not key.startswith(VARYING) and old is not None
        match = old is not None and now is not None and math.isclose(old, now, rel_tol=0.0, abs_tol=tolerance)
        out[key] = {"original": old, "reproduced": now, "compared": compared, "match": bool(match)}
    return out
