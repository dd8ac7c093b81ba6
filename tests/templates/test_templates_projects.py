"""Generated projects, for real: `shipway new`, its requirements, training, the project's own
tests, `shipway check`, and requests over HTTP to `shipway serve` (with outcomes sent back for
a binary classifier, whose online metrics are then checked against scikit-learn's).

Every test run makes one project end to end per library, heavy ones too (`make test` installs
their extras), and checks every input and output kind for scikit-learn and plain Python. The
other kinds of the heavy libraries (PyTorch, sentence embeddings, XGBoost, LightGBM, ONNX) take
longer to import, train and serve, so they are marked `slow_templates` and run only when asked:
`make test-templates`, or `pytest -m slow_templates`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, wait_for
from sklearn import metrics as sk

from shipway.templates import QUESTIONS, missing_requirements

SHIPWAY = [sys.executable, "-m", "shipway"]
FAST = ("sklearn", "custom")
HEAVY = ("xgboost", "lightgbm", "pytorch", "onnx", "sentence-embeddings")
# One end-to-end run per library; between them they cover every input and output kind.
END_TO_END = {
    "sklearn": ("text", "label"),
    "custom": ("records", "ranking"),
    "xgboost": ("tabular", "score"),
    "lightgbm": ("tabular", "binary"),
    "pytorch": ("text", "binary"),
    "onnx": ("tabular", "label"),
    "sentence-embeddings": ("text", "ranking"),
}


def library_param(library: str, *more: str, slow: tuple[str, ...] = HEAVY) -> object:
    marks = [pytest.mark.slow_templates] if library in slow else []
    return pytest.param(library, *more, marks=marks, id="-".join((library, *more)))


@pytest.fixture(autouse=True)
def only_when_asked(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("slow_templates") and "slow_templates" not in request.config.option.markexpr:
        pytest.skip("a heavy library: run with `pytest -m slow_templates`")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the template repository
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing downloads weights
    yield


def install_needs(library: str) -> None:
    """Install what the project needs and this Python lacks (nothing, when the extras are in)."""
    missing = missing_requirements(library)
    if missing:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", *missing], capture_output=True, text=True
        )
        assert result.returncode == 0, f"could not install {missing}:\n{result.stderr}"


def run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


# A project trains, runs its own tests (a server of its own), is checked and served: with the
# sentence encoder loaded each time, that can pass the suite's 300 s on a loaded machine.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("library", [library_param(name, slow=()) for name in END_TO_END])
def test_a_new_project_trains_passes_its_tests_and_check_and_answers_over_http(
    library: str, tmp_path: Path, serve: Callable[..., Server]
) -> None:
    install_needs(library)
    input_kind, output = END_TO_END[library]
    name = f"svc-{library}"
    new = run(
        [*SHIPWAY, "new", name, "--library", library, "--input", input_kind, "--output", output, "--yes"], tmp_path
    )
    assert new.returncode == 0, new.stdout + new.stderr
    project = tmp_path / name
    assert (project / "artifacts" / "manifest.json").exists(), f"new did not train:\n{new.stdout}"

    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
    assert (project / "artifacts" / "profile.json").exists(), "training wrote no drift reference"

    check = run([*SHIPWAY, "check", str(project)], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "FAIL" not in check.stdout and "warn" not in check.stdout, check.stdout

    server = serve(project)
    example = run([sys.executable, "-c", "import service, json; print(service.example.model_dump_json())"], project)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = post_until_accepted(client, "/predict", content=example.stdout.strip())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["decision"]["queue"] == "default"  # rules.yaml is live, with no rules yet
    assert (
        answer.keys() - {"decision"}
        == {
            ("text", "label"): {"label", "probability", "alternatives"},
            ("records", "ranking"): {"predictions"},
            ("tabular", "score"): {"score"},
            ("tabular", "binary"): {"probability", "positive"},
            ("text", "binary"): {"probability", "positive"},
            ("tabular", "label"): {"label", "probability", "alternatives"},
            ("text", "ranking"): {"items"},
        }[(input_kind, output)]
    )
    if output == "binary":
        outcomes_give_the_binary_metrics(server.url, project)


def post_until_accepted(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    """POST, again after each 503's Retry-After: a server shedding load on a busy machine (its
    expected queue wait over batching.max_queue_wait_ms) asks to be called later."""
    deadline = time.monotonic() + 120
    while True:
        response = client.post(path, **kwargs)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))


def outcomes_give_the_binary_metrics(url: str, project: Path) -> None:
    """The validation split through /predict, its 0/1 targets back as outcomes: the dashboard's
    metrics are scikit-learn's on the same records, at the threshold of shipway.toml."""
    rows = [json.loads(line) for line in (project / "build" / "dataset" / "valid.jsonl").read_text().splitlines()]
    probabilities, targets = [], []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i, row in enumerate(rows):
            target = row.pop("target")
            response = post_until_accepted(client, "/predict", json=row, headers={"x-request-id": f"v{i}"})
            assert response.status_code == 200, response.text
            probabilities.append(response.json()["probability"])
            targets.append(target)
        feedback = [{"request_id": f"v{i}", "label": target} for i, target in enumerate(targets)]

        def all_joined() -> bool:
            # Predictions are logged every half second; an outcome that came first joins on a read.
            totals = client.get("/dashboard/api/metrics", params={"since": "1h"}).json()["totals"]
            return bool(totals["labelled"] == len(rows))

        assert client.post("/feedback", json=feedback).status_code == 200
        wait_for(all_joined, 60, "every outcome to join its prediction")
        totals = client.get("/dashboard/api/metrics", params={"since": "1h"}).json()["totals"]
    assert len(set(targets)) == 2, "the validation split needs both outcomes"
    binary = totals["binary"]
    assert totals["kind"] == "binary" and binary["count"] == len(rows) and binary["threshold"] == 0.5
    assert abs(binary["roc_auc"] - sk.roc_auc_score(targets, probabilities)) <= binary["auc_bound"] + 1e-9
    assert binary["brier"] == pytest.approx(sk.brier_score_loss(targets, probabilities), rel=1e-6)
    answered = [p >= 0.5 for p in probabilities]
    assert binary["accuracy"] == pytest.approx(sk.accuracy_score(targets, answered))
    assert binary["recall"] == pytest.approx(sk.recall_score(targets, answered))


COMBINATIONS = [
    library_param(library, input_kind, output)
    for library in (*FAST, *HEAVY)
    for input_kind in QUESTIONS[1].values
    for output in QUESTIONS[2].values
    if (library, input_kind, output) != (library, *END_TO_END[library])
    and not (library == "sentence-embeddings" and input_kind != "text")
]


@pytest.mark.parametrize(("library", "input_kind", "output"), COMBINATIONS)
def test_every_combination_trains_and_passes_check(library: str, input_kind: str, output: str, tmp_path: Path) -> None:
    install_needs(library)
    name = f"{library}-{input_kind}-{output}"
    answers = ["--library", library, "--input", input_kind, "--output", output]
    new = run([*SHIPWAY, "new", name, *answers, "--yes"], tmp_path)
    assert new.returncode == 0, new.stdout + new.stderr
    check = run([*SHIPWAY, "check", name], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "FAIL" not in check.stdout and "warn" not in check.stdout, check.stdout
