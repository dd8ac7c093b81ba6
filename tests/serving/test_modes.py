"""Service modes: off answers the default without the model, shadow predicts and logs
but answers the default, on serves the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from conftest import SERVICES, InProcess, logged_row, start_server


def logged(server: InProcess, request_id: str) -> tuple[bytes, bytes, bytes | None]:
    outputs, decision, shadow = logged_row(server, request_id, "outputs, decision, shadow")
    return outputs.encode(), decision.encode(), shadow and shadow.encode()


def test_off_answers_the_default_without_calling_the_model(serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(SERVICES / "faulty", "--mode", "off")
    try:
        # "raise" would make predict fail: in mode off predict is never called
        response = server.post("/predict", json={"text": "raise"}, headers={"x-request-id": "off-1"})
        assert response.status_code == 200
        assert response.json() == {"text": "DEFAULT", "pid": 0, "loaded_in": 0}
        batch = server.post("/predict/batch", json={"items": [{"text": "a"}, {"text": "b"}]})
        assert batch.json() == {"items": [{"text": "DEFAULT", "pid": 0, "loaded_in": 0}] * 2}
        # bad input is still refused: the schema holds in every mode
        assert server.post("/predict", json={"txt": "a"}).status_code == 422
        outputs, decision, _ = logged(server, "off-1")
        assert orjson.loads(decision) == {"mode": "off", "answer": "default"}
        assert orjson.loads(outputs)["text"] == "DEFAULT"
    finally:
        server.stop()


def test_shadow_predicts_and_logs_but_answers_the_default(serve_in_process: Callable[..., InProcess]) -> None:
    server = serve_in_process(SERVICES / "faulty", "--mode", "shadow")
    try:
        response = server.post("/predict", json={"text": "quiet"}, headers={"x-request-id": "sh-1"})
        assert response.json()["text"] == "DEFAULT"
        outputs, decision, _ = logged(server, "sh-1")
        assert orjson.loads(outputs)["text"] == "QUIET"  # the model ran; its answer is in the log
        assert orjson.loads(decision) == {"mode": "shadow", "answer": "default"}
    finally:
        server.stop()


def test_modes_other_than_on_need_a_default(tmp_path: Path) -> None:
    server = start_server(SERVICES / "identity", tmp_path, "--mode", "shadow", wait=False)
    assert server.proc.wait(60) == 2
    assert "mode 'shadow' answers every request with `default`" in server.log


def test_unknown_mode_lists_the_valid_ones(tmp_path: Path) -> None:
    server = start_server(SERVICES / "identity", tmp_path, "--mode", "dark", wait=False)
    assert server.proc.wait(60) == 2
    assert "it must be one of on, shadow, off" in server.log
