"""A rollout inside a `shipway serve` worker (in-process): it shadows the candidate (h19-candidates'
runtime), the controller in the worker's jobs judges what they logged, and a breached guard rolls
the candidate back while every request is answered."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from recipe_projects import text_project

from shipway.cli.main import main as cli
from shipway.registry import current_candidate
from shipway.store import open_store


def _register(runner: CliRunner, root: Path, recipe: str) -> tuple[str, str]:
    assert runner.invoke(cli, ["try", recipe, "--target", str(root)]).exit_code == 0
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        run = next(r for r in store.list_runs() if r.recipe == recipe)
    shown = runner.invoke(cli, ["models", "register", run.id, "--target", str(root), "--json"])
    assert shown.exit_code == 0, shown.output
    return run.id, json.loads(shown.stdout)["version"]


def test_a_breached_guard_in_serve_rolls_the_shadow_back(tmp_path: Path, serve_in_process: Any) -> None:
    (tmp_path / "topics").mkdir()
    root = text_project(tmp_path / "topics")
    runner = CliRunner()
    live_run, live = _register(runner, root, "tfidf-nb")
    _, candidate = _register(runner, root, "tfidf-lr")
    # A p99 limit no model meets: the candidate's first answers breach it.
    (root / "shipway.toml").write_text(
        f'name = "topics"\nartifacts = ".shipway/tries/{live_run}"\n\n[data]\ntarget = "category"\n\n'
        '[deploy]\nroot = "."\n\n[rules]\npoll_s = 0.2\n\n[log]\nflush_interval_s = 0.05\n\n'
        "[rollout]\ncheck_every_s = 0.5\nmin_requests = 3\nmax_p99_ms = 0.000001\nmax_p99_ratio = 0.0\n"
    )
    store_url = f"sqlite:///{root / '.shipway' / 'shipway.db'}"
    # In-process, as `shipway serve` builds a worker (its rollout job included): no socket is needed.
    server = serve_in_process(root, store_url=store_url)
    started = runner.invoke(cli, ["rollout", "start", candidate, "--target", str(root), "--store", store_url])
    assert started.exit_code == 0, started.output
    answers: list[int] = []
    deadline = time.monotonic() + 60
    with open_store(store_url) as store:
        while True:
            reply = server.post("/predict", json={"text": "refund my money please"})
            answers.append(reply.status_code)
            state = current_candidate(store, "topics")
            if state is not None and state.mode == "rolled_back":
                break
            assert time.monotonic() < deadline, f"no rollback; state {state}; log {server.log[-2000:]}"
    assert state.reason.startswith("guard breached at rollout step 1/4: p99 latency")
    assert state.actor.startswith("rollout controller (")
    assert set(answers) == {200}  # shadowing and rolling back cost no answer
    with open_store(store_url) as store:
        logged = {r.model_version for r in store.read_predictions(service="topics")}
    assert {live, candidate} <= logged  # the candidate was shadowed, under its own version
