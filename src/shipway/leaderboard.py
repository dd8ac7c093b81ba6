"""The leaderboard of a task (shared by `shipway leaderboard` and the dashboard's page): its runs grouped by recipe and parameters, ranked by score.

Each row is one configuration (a recipe with its parameters, or a training step's run name)
over its seeds: the mean and spread of the task's metric on validation and test, fit time,
latency per item, model size, the dataset version, the commit (dirty marked) and whether a
run of it has been reproduced. Published results join as reference rows, read from the
project's `leaderboard.yaml`: they are labelled and have no run, so nothing re-runs them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipway.errors import ConfigError
from shipway.store.base import Store
from shipway.store.runs import RunRecord

__all__ = ["REFERENCES_FILE", "Row", "leaderboard", "read_references", "task_rows"]

REFERENCES_FILE = "leaderboard.yaml"


@dataclass
class Row:
    """One line of the leaderboard."""

    name: str
    metric: str
    seeds: int = 0
    valid_mean: float | None = None
    valid_std: float | None = None
    test_mean: float | None = None
    test_std: float | None = None
    fit_seconds: float | None = None
    latency_ms: float | None = None
    model_bytes: int | None = None
    dataset_version: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    reproduced: bool = False
    params: str = ""
    runs: list[str] = field(default_factory=list)
    reference: bool = False
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cells(self) -> list[str]:
        """The row as the terminal and the dashboard show it, from seeds to reproduced."""
        commit = "" if self.commit is None else self.commit[:8] + (" (dirty)" if self.dirty else "")
        return [
            str(self.seeds or ""),
            _figure(self.valid_mean, self.valid_std),
            _figure(self.test_mean, self.test_std),
            "" if self.fit_seconds is None else f"{self.fit_seconds:.1f}",
            "" if self.latency_ms is None else f"{self.latency_ms:.2f}",
            "" if self.model_bytes is None else f"{self.model_bytes / 1e6:.1f}",
            self.dataset_version or "",
            commit or self.source,
            "yes" if self.reproduced else "",
        ]


def _figure(mean: float | None, spread: float | None) -> str:
    if mean is None:
        return ""
    return f"{mean:.4f}" + (f" ± {spread:.4f}" if spread else "")


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def leaderboard(
    runs: Iterable[RunRecord], metric: str, references: Sequence[Row] = (), reproduced: Iterable[str] = ()
) -> list[Row]:
    """Finished runs grouped by configuration, best test score first (then validation), with the
    references among them. `reproduced` holds the ids of runs that some finished run reproduces."""
    copies = set(reproduced)
    groups: dict[tuple[str, str, str | None, str | None], list[RunRecord]] = {}
    for run in runs:
        if run.status != "finished" or run.parent:  # a reproduction marks its original, not a row
            continue
        key = (run.recipe or run.name or "run", run.tags.get("params", ""), run.dataset_version, run.code_commit)
        groups.setdefault(key, []).append(run)
    rows = []
    for (name, params, version, commit), members in groups.items():
        valid = [float(r.metrics[f"valid_{metric}"]) for r in members if f"valid_{metric}" in r.metrics]
        test = [float(r.metrics[f"test_{metric}"]) for r in members if f"test_{metric}" in r.metrics]
        fits = [float(r.metrics.get("fit_seconds", r.metrics.get("train_seconds", 0.0))) for r in members]
        latency = [float(r.metrics["latency_ms_p50"]) for r in members if "latency_ms_p50" in r.metrics]
        sizes = [int(r.metrics["model_size_bytes"]) for r in members if "model_size_bytes" in r.metrics]
        valid_mean, valid_std = _mean_std(valid)
        test_mean, test_std = _mean_std(test)
        rows.append(
            Row(
                name=name,
                metric=metric,
                seeds=len(members),
                valid_mean=valid_mean,
                valid_std=valid_std,
                test_mean=test_mean,
                test_std=test_std,
                fit_seconds=statistics.fmean(fits) if fits else None,
                latency_ms=statistics.median(latency) if latency else None,
                model_bytes=max(sizes) if sizes else None,
                dataset_version=version,
                commit=commit,
                dirty=any(bool(r.dirty) for r in members),
                reproduced=any(r.id in copies for r in members),
                params=params,
                runs=[r.id for r in members],
            )
        )
    rows.extend(references)

    def rank(row: Row) -> tuple[float, float]:
        return (-(row.test_mean if row.test_mean is not None else -1e9), -(row.valid_mean or -1e9))

    return sorted(rows, key=rank)


def read_references(project: Path, metric: str) -> list[Row]:
    """The published results in the project's leaderboard.yaml, as reference rows."""
    path = Path(project) / REFERENCES_FILE
    if not path.is_file():
        return []
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = loaded.get("references", []) if isinstance(loaded, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(
            f"{path}: expected a mapping with a `references:` list of {{name, test_{metric}, source}}, "
            f"got {type(loaded).__name__}; see docs/recipes.md#reference-rows."
        )
    rows = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("source"):
            raise ConfigError(
                f"{path}: reference {number} ({entry!r}) needs a `name` and a `source` (where the figure is "
                "published); add them."
            )
        values = {}
        for split in ("valid", "test"):
            value = entry.get(f"{split}_{metric}")
            if value is not None and not isinstance(value, int | float):
                raise ConfigError(
                    f"{path}: reference {entry['name']!r} has {split}_{metric}: {value!r}; give a number."
                )
            values[split] = float(value) if value is not None else None
        rows.append(
            Row(
                name=str(entry["name"]),
                metric=metric,
                valid_mean=values["valid"],
                test_mean=values["test"],
                dataset_version=str(entry.get("data", "")) or None,
                reference=True,
                source=str(entry["source"]),
            )
        )
    return rows


def task_rows(store: Store, task: str, project: Path | None) -> list[Row]:
    """The leaderboard of a task in `store`, with the reference rows of the project's leaderboard.yaml."""
    record = store.find_task(task)
    if record is None:
        known = ", ".join(t.name for t in store.list_tasks()) or "none yet"
        raise ConfigError(f"no task {task!r} in the store (tasks: {known}); run `shipway try RECIPE` to make one.")
    runs = store.list_runs(task=task)
    reproduced = {r.parent for r in runs if r.parent and r.status == "finished"}
    references = read_references(project, record.metric) if project is not None else []
    return leaderboard(runs, record.metric, references, {r for r in reproduced if r})
