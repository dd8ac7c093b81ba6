"""`shipway predict` answers exactly what `/predict` answers: the same inputs through both, with
live rules from the store's history, canary rules beside them, and each service mode."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from shipway.cli.main import main
from shipway.project import Project
from shipway.serving.app import App

ROUTER = Path(__file__).resolve().parent.parent / "services" / "router"

LIVE = """version: routing-live
default: {queue: general, answer: {intent: unknown, probability: 0.0}}
rules:
  - name: cards
    when: output.intent in ["card_arrival", "lost_or_stolen_card"]
    then: {queue: cards, set: {probability: 1.0}}
  - name: unsure
    when: output.probability < 0.5
    then: {review: true, reason: unsure}
  - name: give-up
    when: output.intent == "gibberish"
    then: {fallback: true}
"""

CANARY = """version: routing-canary
default: {queue: general}
rules:
  - name: everything-urgent
    then: {queue: urgent}
"""

INPUTS = [
    *({"text": "card_arrival 0.9", "customer_id": f"a{i}"} for i in range(6)),
    {"text": "age_limit 0.3", "customer_id": "b"},
    {"text": "gibberish 0.9", "customer_id": "c"},
    {"text": "lost_or_stolen_card 0.2", "customer_id": "d"},
    *({"text": f"balance 0.{i}", "customer_id": f"c{i}"} for i in range(1, 10)),
]


def _project(tmp_path: Path, mode: str) -> tuple[Path, str]:
    folder = Path(shutil.copytree(ROUTER, tmp_path / "router"))
    toml = folder / "shipway.toml"
    toml.write_text(f'mode = "{mode}"\n' + toml.read_text())
    return folder, f"sqlite:///{tmp_path / 'store.db'}"


def _served(project: Project, bodies: list[bytes]) -> list[bytes]:
    """What /predict answers for each body, through the real ASGI app in this process."""
    app = App(project)

    async def run() -> list[bytes]:
        await app.startup()
        answers = []
        try:
            for i, body in enumerate(bodies):
                sent: list[dict] = []
                scope = {
                    "type": "http",
                    "method": "POST",
                    "path": "/predict",
                    "headers": [(b"x-request-id", b"r%d" % i)],
                }

                async def receive(body: bytes = body) -> dict:
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: dict, sent: list[dict] = sent) -> None:
                    sent.append(message)

                await app(scope, receive, send)
                assert sent[0]["status"] == 200, sent
                answers.append(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
        finally:
            await app.shutdown()
        return answers

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["on", "shadow", "off"])
def test_predict_answers_what_slash_predict_answers(tmp_path: Path, mode: str) -> None:
    folder, store_url = _project(tmp_path, mode)
    project = Project.load(folder, {"store.url": store_url})
    rules = project.rules_manager()
    rules.apply(LIVE, actor="test")
    rules.apply(CANARY, mode="canary", canary=0.2, canary_key="input.customer_id", actor="test")
    project.close()
    bodies = [orjson.dumps(item) for item in INPUTS]

    served = _served(Project.load(folder, {"store.url": store_url}), bodies)

    runner = CliRunner()
    cli = []
    for body in bodies:
        result = runner.invoke(main, ["predict", str(folder), body.decode()], env={"SHIPWAY_STORE_URL": store_url})
        assert result.exit_code == 0, result.output
        cli.append(result.stdout_bytes.rstrip(b"\n"))
    assert [orjson.loads(a) for a in cli] == [orjson.loads(a) for a in served]
    answers = [orjson.loads(a) for a in served]
    if mode == "on":
        # Both rule sets answered some of the inputs, and the live one changed outputs: the
        # comparison covered rules, canary and overrides, not only the model.
        versions = {a["decision"]["rules_version"] for a in answers}
        assert versions == {"routing-live", "routing-canary"}
        assert any(a["decision"]["queue"] == "cards" and a["probability"] == 1.0 for a in answers)
    else:
        assert all(a == {"intent": "unknown", "probability": 0.0} for a in answers)


def test_predict_refuses_a_bad_input_in_mode_off_as_slash_predict_does(tmp_path: Path) -> None:
    folder, store_url = _project(tmp_path, "off")
    result = CliRunner().invoke(main, ["predict", str(folder), '{"txt": 1}'], env={"SHIPWAY_STORE_URL": store_url})
    assert result.exit_code != 0 and "text" in result.output
