"""Model candidates in a running service: every worker follows the store's candidate state
(shadow, canary, promoted, rolled back) on both store backends; shadow answers are logged
under the candidate's version; a canary keeps a key on one side; a broken candidate is
refused at load; a batch never mixes versions."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from conftest import SERVICES, Server, start_server

from shipway.core.artifacts import write_manifest
from shipway.project import Project
from shipway.registry import CandidateState, set_candidate
from shipway.serving.app import App
from shipway.serving.batching import Batcher
from shipway.serving.runtime import Candidate
from shipway.store import Store, open_store
from shipway.store.objects import ObjectStore
from shipway.store.registry import ModelVersion

pytest_plugins = ["store_fixtures"]

SERVICE = "scaled"


def register_scale(store: Store, project: Path, scale: str, *, tamper: str | None = None) -> str:
    """Register a model of the `scaled` service whose artifacts hold `scale`, its files in the
    project's artifact folder; `tamper` replaces the file's content after its manifest is written."""
    folder = project.parent / f"trained-{scale}"
    folder.mkdir()
    (folder / "scale.txt").write_text(scale)
    version = f"scale-{scale}" + ("-tampered" if tamper else "")
    write_manifest(folder, {"version": version, "run_id": f"run-{scale}"})
    if tamper is not None:
        (folder / "scale.txt").write_text(tamper)
    objects = ObjectStore(project / ".shipway" / "objects")
    files = {}
    for path in sorted(folder.iterdir()):
        digest, size = objects.put(path)
        files[path.name] = {"digest": digest, "size": size}
    store.register_model_version(ModelVersion(version, digest=version.ljust(64, "0"), files=files))
    return version


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def workers_on(server: Server, generation: int, workers: int = 2) -> bool:
    """Whether `workers` distinct worker processes answered GET / at `generation`."""
    seen: dict[int, int] = {}
    for _ in range(12 * workers):  # a connection each: the workers share the listening socket
        index = httpx.get(server.url + "/", headers={"connection": "close"}).json()
        seen[index["worker"]] = (index.get("candidate") or {}).get("generation", 0)
    return len(seen) >= workers and all(g == generation for g in seen.values())


def scale_of(client: httpx.Client, x: float, request_id: str | None = None) -> float:
    headers = {"x-request-id": request_id} if request_id else {}
    response = client.post("/predict", json={"x": x}, headers=headers)
    assert response.status_code == 200, response.text
    return float(response.json()["y"]) / x


def test_every_worker_follows_shadow_canary_promotion_and_rollback(tmp_path: Path, store_url: str) -> None:
    project = Path(
        shutil.copytree(SERVICES / SERVICE, tmp_path / SERVICE, ignore=shutil.ignore_patterns("__pycache__"))
    )
    with open_store(store_url) as store:
        five = register_scale(store, project, "5")
        seven = register_scale(store, project, "7")
    server = start_server(project, tmp_path, "--workers", "2", store_url=store_url)
    try:
        client = httpx.Client(base_url=server.url)
        assert scale_of(client, 2.0) == 2.0
        # Shadow on all traffic: the live version answers; the candidate's answers are logged.
        with open_store(store_url) as store:
            set_candidate(store, SERVICE, CandidateState(five, "shadow", 1.0, reason="test", actor="t"))
        wait_for(lambda: workers_on(server, 1), "both workers to follow the shadow state")
        ids = [f"shadowed-{i}" for i in range(10)]
        assert {scale_of(client, 3.0, rid) for rid in ids} == {2.0}

        def shadow_rows() -> dict[str, Any]:
            with open_store(store_url) as store:
                rows = store.read_predictions(service=SERVICE)
            return {r.request_id: r for r in rows if r.request_id.endswith(":shadow")}

        rows = wait_for(lambda: (found := shadow_rows()) and len(found) == len(ids) and found, "the shadow records")
        for rid in ids:
            row = rows[f"{rid}:shadow"]
            assert row.model_version == five and b'"y":15.0' in row.outputs.replace(b" ", b"")
            assert b'"mode":"shadow"' in (row.decision or b"").replace(b" ", b"")
        # Canary on half the keys: a key stays on its side; the log names the version that answered.
        with open_store(store_url) as store:
            set_candidate(store, SERVICE, CandidateState(five, "canary", 0.5, key="input.x", actor="t"))
        wait_for(lambda: workers_on(server, 2), "both workers to follow the canary state")
        sides: dict[float, set[float]] = {}
        for round_ in range(3):
            for x in range(1, 21):
                sides.setdefault(float(x), set()).add(scale_of(client, float(x), f"canary-{x}-{round_}"))
        assert all(len(s) == 1 for s in sides.values()), sides
        assert {next(iter(s)) for s in sides.values()} == {2.0, 5.0}

        def canary_rows() -> list[Any]:
            with open_store(store_url) as store:
                found = [r for r in store.read_predictions(service=SERVICE) if r.request_id.startswith("canary-")]
            return found if len(found) == 60 else []

        for row in wait_for(canary_rows, "the canary records"):
            key = float(row.request_id.split("-")[1])
            assert row.model_version == (five if sides[key] == {5.0} else "scale-2"), row.request_id
        # Promotion: the candidate answers everything, in every worker.
        with open_store(store_url) as store:
            set_candidate(store, SERVICE, CandidateState(five, "promoted", actor="t"))
        wait_for(lambda: workers_on(server, 3), "both workers to follow the promotion")
        assert {scale_of(client, float(x)) for x in range(1, 21)} == {5.0}
        # A new candidate rolled back: all traffic stays on the live version.
        with open_store(store_url) as store:
            set_candidate(store, SERVICE, CandidateState(seven, "canary", 1.0, actor="t"))
        wait_for(lambda: workers_on(server, 4), "both workers to follow the second canary")
        assert {scale_of(client, float(x)) for x in range(1, 6)} == {7.0}
        with open_store(store_url) as store:
            set_candidate(store, SERVICE, CandidateState(seven, "rolled_back", reason="breach", actor="t"))
        wait_for(lambda: workers_on(server, 5), "both workers to follow the rollback")
        assert {scale_of(client, float(x)) for x in range(1, 21)} == {5.0}
        client.close()
    finally:
        server.stop()
    # A restart serves the promoted version.
    server = start_server(project, tmp_path, store_url=store_url)
    try:
        with httpx.Client(base_url=server.url) as client:
            assert scale_of(client, 2.0) == 5.0
    finally:
        server.stop()


def test_a_broken_candidate_is_refused_at_load_and_the_live_version_serves(tmp_path: Path) -> None:
    project = Path(
        shutil.copytree(SERVICES / SERVICE, tmp_path / SERVICE, ignore=shutil.ignore_patterns("__pycache__"))
    )
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(store_url) as store:
        broken = register_scale(store, project, "3", tamper="300")
        set_candidate(store, SERVICE, CandidateState(broken, "canary", 1.0, actor="t"))
    app = App(Project.load(project, {"store.url": store_url}))

    async def scenario() -> tuple[int, dict[str, Any], dict[str, Any]]:
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                answer = await client.post("/predict", json={"x": 2.0})
                index = (await client.get("/")).json()
            return answer.status_code, answer.json(), index
        finally:
            await app.shutdown()

    status, answer, index = asyncio.run(scenario())
    assert status == 200 and answer["y"] == 4.0  # the live version (scale 2) answered
    assert app.runtime.candidate is None
    assert index["candidate"]["generation"] == 1 and "scale.txt" in index["candidate"]["refused"]


def test_canary_share_is_stable_by_key_and_close_to_its_share(tmp_path: Path) -> None:
    state = CandidateState("m-1", "canary", 0.3, key="input.customer")
    first = Candidate(state, None, ("s", "m-1", None, None, None))  # type: ignore[arg-type]
    again = Candidate(state, None, ("s", "m-1", None, None, None))  # type: ignore[arg-type]
    picks = [first.sampled(f"r-{i}", {"customer": f"c-{i}"}) for i in range(2000)]
    assert picks == [again.sampled(f"other-{i}", {"customer": f"c-{i}"}) for i in range(2000)]  # the key decides
    assert 0.25 < sum(picks) / len(picks) < 0.35
    assert not first.sampled("r-x", {"other": 1})  # no key: the live version answers
    by_id = Candidate(CandidateState("m-1", "canary", 0.3), None, ("s", "m-1", None, None, None))  # type: ignore[arg-type]
    assert [by_id.sampled(f"r-{i}", {}) for i in range(50)] == [by_id.sampled(f"r-{i}", {}) for i in range(50)]


def test_a_batch_never_mixes_versions() -> None:
    seen: dict[str, list[list[int]]] = {"a": [], "b": []}

    def runner(name: str) -> Callable[[list[Any]], list[Any]]:
        def run(items: list[Any]) -> list[Any]:
            seen[name].append(list(items))
            return [(name, i) for i in items]

        return run

    run_a, run_b = runner("a"), runner("b")

    async def scenario() -> list[Any]:
        batcher = Batcher(run_a, max_batch_size=8, max_wait_s=0.0)
        await batcher.start()
        futures = [batcher.submit(i, run_b if i % 3 == 0 else None) for i in range(30)]
        results = await asyncio.gather(*futures)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert results == [("b" if i % 3 == 0 else "a", i) for i in range(30)]
    assert all(i % 3 == 0 for batch in seen["b"] for i in batch)
    assert all(i % 3 != 0 for batch in seen["a"] for i in batch)
    assert all(len(batch) <= 8 for batches in seen.values() for batch in batches)
