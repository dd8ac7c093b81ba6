"""schemathesis over every operation of the banking77 example's OpenAPI document, in-process
(the App under schemathesis's ASGI client, with its real start-up, store and pipeline).

Every response must be what the document says: no server error, every 4xx in the one error
shape, bodies the document calls valid accepted and the ones it calls invalid refused. The
number of examples per operation is bounded so that the run stays short.

One test runs every operation: schemathesis's pytest plugin ends the App's lifespan after each
test, and a service is started once, as a worker starts it."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemathesis
from conftest import wait_for
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from shipway.project import Project
from shipway.serving.app import App

# Per operation and mode; SHIPWAY_FUZZ_EXAMPLES=1000 for a longer run (docs/benchmarks.md).
EXAMPLES = int(os.environ.get("SHIPWAY_FUZZ_EXAMPLES", "50"))
# The same cases on every run of the suite, so that a run passes or fails for the code alone;
# SHIPWAY_FUZZ_RANDOM=1 draws new ones (a fresh clone's random draw found the ST201 of /feedback).
DERANDOMIZE = os.environ.get("SHIPWAY_FUZZ_RANDOM") != "1"
OPERATIONS = [
    ("POST", "/predict"),
    ("POST", "/predict/batch"),
    ("POST", "/explain"),
    ("POST", "/feedback"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
]


def test_every_operation_answers_as_documented(banking77: Path, tmp_path: Path) -> None:
    overrides = {"store.url": f"sqlite:///{tmp_path / 'store.db'}", "log.spool_dir": str(tmp_path / "spool")}
    app = App(Project.load(banking77, overrides))
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    documented = [(op.method.upper(), op.path) for op in (result.ok() for result in api.get_all_operations())]
    assert sorted(documented) == sorted(OPERATIONS)
    ready = lambda: api["/ready"]["GET"].Case().call().status_code == 200  # noqa: E731
    wait_for(ready, 60, "the service to be ready")  # the warm-up runs after start-up

    cases: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    for method, path in OPERATIONS:
        # An operation without parameters or a body has no invalid request to make.
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if method == "POST" else [])
        for mode in modes:
            label = f"{method} {path} ({mode})"
            try:
                fuzz(api[path][method], mode, lambda status, label=label: cases.update([(label, status)]))
            except (Exception, BaseExceptionGroup) as err:  # every operation runs; failures are reported together
                failures.append(f"{label}: {err}")
    total = sum(cases.values())
    statuses = sorted({status for *_, status in cases})
    print(f"\nschemathesis: {total} cases over {len(OPERATIONS)} operations, statuses {statuses}")
    assert not failures, "\n\n".join(failures)
    assert all(status < 500 for *_, status in cases)


def fuzz(operation: Any, mode: GenerationMode, record: Callable[[int], None]) -> None:
    """EXAMPLES requests to `operation` made by schemathesis, each answer checked against the document."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call()
        record(response.status_code)
        assert response.status_code < 500, response.text
        case.validate_response(response)

    run()
