"""`shipway leaderboard`: the leaderboard (shipway/leaderboard.py) of the project's current task."""

from __future__ import annotations

from shipway.core.service import Service
from shipway.core.settings import Settings
from shipway.experiments.training import current_dataset, task_for
from shipway.leaderboard import Row, task_rows
from shipway.store.base import Store
from shipway.store.objects import ObjectStore

__all__ = ["task_leaderboard"]


def task_leaderboard(
    settings: Settings, service: Service, store: Store, objects: ObjectStore, task: str | None = None
) -> tuple[str, list[Row]]:
    """The leaderboard of `task` (default: the task of the dataset now in data.dir), with the
    project's reference rows."""
    if task is None:
        task = task_for(settings, current_dataset(settings, service, store, objects)).name
    return task, task_rows(store, task, settings.root)
