"""A backtest replays logged records through the rules stage serving runs: the current side,
with its canary rules beside the live ones, decides each logged request as serving decided it."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest

from shipway.core.pipeline import Pipeline
from shipway.core.schema import Schema
from shipway.errors import ShipwayError
from shipway.experiments.backtest import backtest
from shipway.project import Project
from shipway.serving.app import App
from shipway.store import open_store

ROUTER = Path(__file__).resolve().parent.parent / "services" / "router"

LIVE = """version: live-1
default: {queue: general}
rules:
  - name: cards
    when: output.intent in ["card_arrival", "lost_or_stolen_card"]
    then: {queue: cards}
"""
CANARY = """version: canary-1
default: {queue: general}
rules:
  - name: everything-urgent
    then: {queue: urgent}
"""
PROPOSED = """version: proposed-1
default: {queue: general}
rules:
  - name: unsure
    when: output.probability < 0.5
    then: {queue: people}
"""
INPUTS = [
    {"text": f"{intent} 0.{i}", "customer_id": f"c{i}"} for i in range(1, 10) for intent in ("card_arrival", "balance")
]


def _serve(project: Project, items: list[dict]) -> None:
    app = App(project)

    async def run() -> None:
        await app.startup()
        try:
            for i, item in enumerate(items):
                body = orjson.dumps(item)
                scope = {
                    "type": "http",
                    "method": "POST",
                    "path": "/predict",
                    "headers": [(b"x-request-id", b"r%d" % i)],
                }

                async def receive(body: bytes = body) -> dict:
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: dict) -> None:
                    assert message["type"] != "http.response.start" or message["status"] == 200

                await app(scope, receive, send)
        finally:
            await app.shutdown()  # writes every logged record

    asyncio.run(run())


def _project(tmp_path: Path, mode: str = "on") -> tuple[Path, dict[str, str]]:
    folder = Path(shutil.copytree(ROUTER, tmp_path / "router"))
    toml = folder / "shipway.toml"
    toml.write_text(f'mode = "{mode}"\n' + toml.read_text())
    return folder, {"store.url": f"sqlite:///{tmp_path / 'store.db'}"}


def test_the_current_side_decides_logged_traffic_as_serving_did_canary_included(tmp_path: Path) -> None:
    folder, overrides = _project(tmp_path)
    project = Project.load(folder, overrides)
    rules = project.rules_manager()
    rules.apply(LIVE)
    rules.apply(CANARY, mode="canary", canary=0.3, canary_key="input.customer_id")
    project.close()
    _serve(Project.load(folder, overrides), INPUTS)

    project = Project.load(folder, overrides)
    with open_store(overrides["store.url"]) as store:
        records = list(store.iter_predictions(service="router"))
    assert len(records) == len(INPUTS) and {r.mode for r in records} == {"on"}
    served = Counter(str(orjson.loads(r.decision or b"{}")["queue"]) for r in records)
    assert set(served) == {"cards", "general", "urgent"}  # live and canary both answered

    manager = project.rules_manager()
    report = backtest(records, manager.load(), manager.compile(PROPOSED)).to_dict()
    assert report["total"] == len(INPUTS) and report["skipped"] == 0
    assert report["queue_totals"]["current"] == dict(served)
    # Without the canary beside it, the live rules alone would not have answered as served.
    alone = backtest(records, manager.compile(LIVE), manager.compile(PROPOSED)).to_dict()
    assert alone["queue_totals"]["current"] != dict(served)


def test_answers_served_in_mode_shadow_are_skipped_by_the_logged_mode(tmp_path: Path) -> None:
    folder, overrides = _project(tmp_path, mode="shadow")
    project = Project.load(folder, overrides)
    project.rules_manager().apply(LIVE)
    project.close()
    _serve(Project.load(folder, overrides), INPUTS[:4])
    with open_store(overrides["store.url"]) as store:
        records = list(store.iter_predictions(service="router"))
    assert {r.mode for r in records} == {"shadow"}
    manager = Project.load(folder, overrides).rules_manager()
    report = backtest(records, manager.load(), manager.compile(PROPOSED))
    assert (report.total, report.skipped) == (0, 4)


def test_a_replay_names_the_stage_it_starts_from() -> None:
    from shipway.core.stage import Stage

    pipeline = Pipeline(
        [Stage("double", "after", one=lambda v, _r: v * 2)], Schema(int, "input"), Schema(int, "output")
    )
    assert pipeline.replay("double", [1, 2], [0, 0]) == [2, 4]
    with pytest.raises(ShipwayError, match="no stage 'rules' to replay from; the stages are double"):
        pipeline.replay("rules", [1], [0])
