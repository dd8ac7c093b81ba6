"""The HTTP service, in-process over ASGI (the real App, started as a worker starts it):
endpoints, the error shape, bad input."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import SERVICES, InProcess, in_process, logged_row, wait_for

IDENTITY = SERVICES / "identity"
FAULTY = SERVICES / "faulty"


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    with in_process(IDENTITY, tmp_path_factory.mktemp("identity")) as service:
        yield service


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    with in_process(FAULTY, tmp_path_factory.mktemp("faulty")) as service:
        yield service


def assert_error_shape(response: httpx.Response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) <= {"type", "message", "request_id", "details"}
    assert error["type"] == kind
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def test_predict_one(identity: InProcess) -> None:
    response = identity.post("/predict", json={"text": "where is my card?"})
    assert response.status_code == 200
    assert response.json() == {"text": "where is my card?"}
    assert len(response.headers["x-request-id"]) >= 16


def test_request_id_is_taken_from_the_caller(identity: InProcess) -> None:
    response = identity.post("/predict", json={"text": "x"}, headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    # an id with spaces or control characters is not echoed into logs and headers
    response = identity.post("/predict", json={"text": "x"}, headers={"x-request-id": "a b"})
    assert response.headers["x-request-id"] != "a b"


def test_predict_batch(identity: InProcess) -> None:
    items = [{"text": f"message {i}"} for i in range(50)]
    response = identity.post("/predict/batch", json={"items": items})
    assert response.status_code == 200
    assert response.json() == {"items": items}


def test_schema_failure_names_the_field(identity: InProcess) -> None:
    response = identity.post("/predict", json={"txt": "hello"})
    error = assert_error_shape(response, 422, "input_error")
    assert error["details"][0]["loc"] == ["text"]
    assert "text" in error["message"] and "Field required" in error["message"]
    response = identity.post("/predict", json={"text": 5})
    error = assert_error_shape(response, 422, "input_error")
    assert error["details"][0]["type"] == "string_type"


def test_batch_schema_failure_names_the_item(identity: InProcess) -> None:
    response = identity.post("/predict/batch", json={"items": [{"text": "ok"}, {"text": None}]})
    error = assert_error_shape(response, 422, "input_error")
    assert error["details"][0]["loc"] == ["items", 1, "text"]
    response = identity.post("/predict/batch", json=[{"text": "ok"}])
    assert 'takes {"items": [item, ...]}' in assert_error_shape(response, 400, "payload_error")["message"]


def test_body_not_json(identity: InProcess) -> None:
    response = identity.post("/predict", content=b"text=hello")
    error = assert_error_shape(response, 400, "payload_error")
    assert "not valid JSON" in error["message"]


def test_body_too_large(identity: InProcess) -> None:
    body = b'{"text": "' + b"a" * 2_000_000 + b'"}'
    error = assert_error_shape(identity.post("/predict", content=body), 413, "payload_error")
    assert "1048576-byte limit" in error["message"] and "serve.max_body_bytes" in error["message"]

    def chunks():  # no content-length: the limit holds while streaming too
        for _ in range(40):
            yield b"a" * 100_000

    response = identity.post("/predict", content=chunks())
    assert_error_shape(response, 413, "payload_error")


def test_unknown_route_and_method(identity: InProcess) -> None:
    assert_error_shape(identity.get("/nope"), 404, "not_found")
    response = identity.get("/predict")
    assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_health_ready_and_index(identity: InProcess) -> None:
    assert identity.get("/health").json() == {"status": "ok"}
    ready = identity.get("/ready").json()
    assert ready["ready"] is True and ready["ids"]["service"] == "identity"
    assert "/predict" in identity.get("/").json()["routes"]


def test_openapi_describes_the_types(identity: InProcess) -> None:
    doc = identity.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Message"}
    assert doc["components"]["schemas"]["Message"]["required"] == ["text"]
    assert "422" in doc["paths"]["/predict"]["post"]["responses"]
    answer = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["allOf"][0] == {"$ref": "#/components/schemas/Message"}
    assert "rules_version" in doc["components"]["schemas"]["Decision"]["properties"]


def test_explain_returns_the_trace(identity: InProcess) -> None:
    response = identity.post("/explain", json={"text": "hi"})
    assert response.status_code == 200
    trace = response.json()
    assert [s["stage"] for s in trace["stages"]] == ["input", "predict", "rules", "output"]
    assert trace["output"] == {"text": "hi"}
    assert trace["ids"]["service"] == "identity" and trace["ids"]["model_version"]
    assert trace["request_id"] == response.headers["x-request-id"]


def test_metrics_count_requests_and_errors(identity: InProcess) -> None:
    identity.post("/predict", json={"text": "count me"})
    identity.post("/predict", json={})
    text = identity.get("/metrics").text
    for name in (
        "shipway_requests_total",
        "shipway_errors_total",
        "shipway_request_latency_seconds_bucket",
        "shipway_batch_size_bucket",
        "shipway_queue_wait_seconds_bucket",
        "shipway_in_flight",
    ):
        assert name in text, name
    assert 'shipway_errors_total{service="identity",type="input_error"}' in text


def test_exception_in_predict_is_a_generic_500(faulty: InProcess) -> None:
    response = faulty.post("/predict", json={"text": "raise"}, headers={"x-request-id": "boom-1"})
    error = assert_error_shape(response, 500, "prediction_error")
    assert "exploded" not in error["message"]  # model internals are not shown to callers
    assert "boom-1" in error["message"]
    # the worker survives, and the log holds the traceback under the request id
    assert faulty.post("/predict", json={"text": "fine"}).json()["text"] == "FINE"
    lines = wait_for(lambda: [line for line in faulty.log.splitlines() if '"boom-1"' in line], 10, "the log line")
    assert "RuntimeError: predict exploded on purpose" in lines[0]
    assert '"level":"error"' in lines[0]


def test_one_bad_item_does_not_fail_its_neighbours(faulty: InProcess) -> None:
    with faulty.client() as client:
        import concurrent.futures as cf

        texts = ["a", "b", "raise", "c", "d"] * 4
        with cf.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda t: client.post("/predict", json={"text": t}), texts))
    for text, response in zip(texts, results, strict=False):
        assert response.status_code == (500 if text == "raise" else 200)


def test_timeout_is_504(faulty: InProcess) -> None:
    response = faulty.post("/predict", json={"text": "slow", "sleep_s": 1.5})
    error = assert_error_shape(response, 504, "timeout")
    assert "serve.predict_timeout_s" in error["message"]
    # once the slow batch has finished, the service answers again
    wait_for(lambda: faulty.post("/predict", json={"text": "ok"}).status_code == 200, 30, "an answer")


def test_predictions_are_logged_with_redaction(faulty: InProcess) -> None:
    response = faulty.post("/predict", json={"text": "secret customer text"}, headers={"x-request-id": "log-1"})
    assert response.status_code == 200
    row = logged_row(faulty, "log-1", "*")
    text = " ".join(str(v) for v in row)
    assert "secret customer text" not in text and "***" in text
    assert "SECRET CUSTOMER TEXT" in text  # outputs are kept; the hook masks only inputs
