"""The parity gate: a model answers its held-out examples as its training run recorded, or its
deploy is refused with the first differing examples and their traces."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from conftest import InProcess

from shipway.cli.main import main as cli
from shipway.core.artifacts import write_manifest
from shipway.core.held_out import HELD_OUT, read_held_out, run_held_out, write_held_out
from shipway.deploy.parity import candidate_pipeline, check_parity, first_difference, parity_gate
from shipway.errors import ArtifactError, GateFailed
from shipway.store import open_store

SERVICE = """
import json
from pathlib import Path

from pydantic import BaseModel


class Query(BaseModel):
    text: str


class Answer(BaseModel):
    label: str
    score: float


def load(artifacts: Path) -> dict:
    return json.loads((Path(artifacts) / "model.json").read_text())


def clean(query: Query) -> Query:
    return Query(text=query.text.lower())


before = [clean]


def predict(model: dict, query: Query) -> Answer:
    words = query.text.split()
    hits = sum(word in model["positive"] for word in words)
    return Answer(label="pos" if hits else "neg", score=hits / len(words) / 3)
"""

TRAIN = """
import json, os
from pathlib import Path

import shipway

artifacts = Path(os.environ["SHIPWAY_ARTIFACTS_DIR"])
artifacts.mkdir(parents=True, exist_ok=True)
(artifacts / "model.json").write_text(json.dumps({"positive": ["good", "great"]}))
shipway.write_manifest(artifacts, {"version": "words-1"})
"""

TEXTS = ["GOOD day", "a great film", "bad weather", "Great GREAT", "nothing here", "good"]


def words_project(root: Path) -> Path:
    """A small project whose training step writes a model of two words; its dataset has a test split."""
    (root / "service.py").write_text(SERVICE)
    (root / "train.py").write_text(TRAIN)
    (root / "shipway.toml").write_text('name = "words"\n\n[train]\ncommand = "python train.py"\n')
    dataset = root / "build" / "dataset"
    dataset.mkdir(parents=True)
    rows = [{"text": t, "label": "pos" if "good" in t.lower() or "great" in t.lower() else "neg"} for t in TEXTS]
    for split in ("train", "test"):
        (dataset / f"{split}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return root


def trained(root: Path) -> str:
    result = CliRunner().invoke(cli, ["train", "--target", str(root)])
    assert result.exit_code == 0, result.output
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        [run] = store.list_runs()
    return run.id


def test_train_records_the_answers_to_the_held_out_examples_as_a_verified_artifact(tmp_path: Path) -> None:
    root = words_project(tmp_path)
    run_id = trained(root)
    artifacts = root / "artifacts"
    manifest = orjson.loads((artifacts / "manifest.json").read_bytes())
    assert HELD_OUT in manifest["files"] and manifest["run_id"] == run_id
    held = read_held_out(artifacts)
    assert held is not None and held.split == "test" and held.dataset_version == manifest["dataset_version"]
    assert [(e.id, e.input["text"], e.output["label"]) for e in held.examples] == [
        (i, t, "pos" if "good" in t.lower() or "great" in t.lower() else "neg") for i, t in enumerate(TEXTS)
    ]
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        assert f"artifacts/{HELD_OUT}" in store.get_run(run_id).artifacts

    result = CliRunner().invoke(cli, ["parity", "--target", str(root), "--run", run_id])
    assert result.exit_code == 0, result.output
    assert f"answers all {len(TEXTS)} held-out examples (test split) as its training run recorded" in result.output


def test_a_changed_preprocessing_stage_is_refused_with_the_examples_it_changed(tmp_path: Path) -> None:
    (tmp_path / "words").mkdir()
    root = words_project(tmp_path / "words").parent
    run_id = trained(root / "words")
    # The skew: the service no longer lowercases, as it did when the model was trained. (A copy of
    # the project: this process has imported the first service.py already.)
    root = shutil.copytree(root / "words", root / "skewed")
    (root / "service.py").write_text(SERVICE.replace("query.text.lower()", "query.text"))
    result = CliRunner().invoke(cli, ["parity", "--target", str(root), "--run", run_id, "--json"])
    assert result.exit_code == 1, result.output
    report = orjson.loads(result.output)
    upper = [i for i, t in enumerate(TEXTS) if t != t.lower() and ("GOOD" in t or "Great" in t)]
    assert report["ok"] is False and report["differing"] == len(upper)
    first = report["differences"][0]
    assert first["id"] == upper[0] and first["where"] == "label"
    assert (first["expected"], first["got"]) == ("pos", "neg")
    stages = {s["stage"]: s for s in first["trace"]["stages"]}
    assert stages["clean"]["output"] == {"text": TEXTS[upper[0]]}  # not lowercased: where it went wrong

    result = CliRunner().invoke(cli, ["deploy", str(root / "artifacts"), "--target", str(root)])
    assert result.exit_code == 1
    assert "refused by the parity gate" in result.output and f"example {upper[0]}:" in result.output
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        assert store.model_history("words") == []  # nothing recorded: the live model keeps serving


def test_a_matching_model_is_deployed_after_the_gate_says_so(tmp_path: Path) -> None:
    root = words_project(tmp_path)
    trained(root)
    result = CliRunner().invoke(cli, ["deploy", str(root / "artifacts"), "--target", str(root)])
    assert result.exit_code == 0, result.output
    assert f"parity gate: model words-1 answers all {len(TEXTS)} held-out examples" in result.output
    assert "deployed model words-1" in result.output


def test_recorded_answers_changed_after_training_are_refused_before_anything_loads(tmp_path: Path) -> None:
    root = words_project(tmp_path)
    trained(root)
    held = root / "artifacts" / HELD_OUT
    held.write_bytes(held.read_bytes().replace(b'"label":"neg"', b'"label":"pos"'))
    result = CliRunner().invoke(cli, ["parity", "--target", str(root)])
    assert result.exit_code == 1
    assert f"{HELD_OUT} in" in result.output and "is not the file manifest.json describes" in result.output


def test_banking77_passes_its_gate_and_a_shorter_truncation_is_refused(banking77: Path, tmp_path: Path) -> None:
    project = tmp_path / "banking77"
    project.mkdir()
    for name in ("service.py", "shipway.toml", "rules.yaml"):
        shutil.copy(banking77 / name, project / name)
    skewed = tmp_path / "skewed"  # the same project with a preprocessing change, loaded later
    shutil.copytree(project, skewed)
    service = (banking77 / "service.py").read_text()
    (skewed / "service.py").write_text(service.replace("MAX_CHARS = 160", "MAX_CHARS = 30"))
    artifacts = shutil.copytree(banking77 / "artifacts", project / "artifacts")
    (artifacts / HELD_OUT).unlink(missing_ok=True)
    # What `shipway train` records, on the first 400 messages of the example's test data.
    texts = [line.rsplit(",", 1)[0].strip('"') for line in (banking77 / "data" / "test.csv").read_text().splitlines()]
    inputs = [(i, {"text": text}) for i, text in enumerate(texts[1:401])]
    write_held_out(artifacts, "test", None, run_held_out(candidate_pipeline(project, artifacts), inputs))
    write_manifest(artifacts)

    report = parity_gate(candidate_pipeline(project, artifacts), artifacts, 1e-6)
    assert report.ok and report.examples == 400 and report.differences == []

    with pytest.raises(GateFailed) as refused:
        parity_gate(candidate_pipeline(skewed, artifacts), artifacts, 1e-6)
    found = refused.value.report
    long = [i for i, (_, item) in enumerate(inputs) if len(" ".join(item["text"].split())) > 30]
    assert 0 < found["differing"] <= len(long)
    first = found["differences"][0]
    assert first["id"] in long
    truncate = next(s for s in first["trace"]["stages"] if s["stage"] == "truncate")
    assert len(truncate["output"]["text"]) == 30 < len(truncate["input"]["text"])
    assert "refused by the parity gate" in str(refused.value) and f"example {first['id']}:" in str(refused.value)


def test_a_folder_without_recorded_answers_is_named(tmp_path: Path) -> None:
    root = words_project(tmp_path)
    trained(root)
    artifacts = root / "artifacts"
    (artifacts / HELD_OUT).unlink()
    write_manifest(artifacts)
    with pytest.raises(ArtifactError, match=f"holds no {HELD_OUT}: its training run recorded no answers"):
        check_parity(candidate_pipeline(root, artifacts), artifacts, 1e-6)


def test_labels_match_exactly_and_scores_within_the_tolerance() -> None:
    recorded = {"label": "pos", "n": 3, "ok": True, "scores": [0.5, 0.25], "top": {"label": "a", "p": 0.9}}
    assert first_difference(recorded, orjson.loads(orjson.dumps(recorded)), 0.0) is None
    near = {**recorded, "scores": [0.5 + 1e-9, 0.25], "top": {"label": "a", "p": 0.9 - 1e-9}}
    assert first_difference(recorded, near, 1e-6) is None
    assert first_difference(recorded, near, 1e-12) == ("scores[0]", 0.5, 0.5 + 1e-9)
    assert first_difference(recorded, {**recorded, "n": 4}, 1.0) == ("n", 3, 4)  # an integer is a label
    assert first_difference(recorded, {**recorded, "ok": 1}, 1.0) == ("ok", True, 1)
    assert first_difference(recorded, {**recorded, "top": {"label": "b", "p": 0.9}}, 1.0) == ("top.label", "a", "b")
    assert first_difference(recorded, {**recorded, "scores": [0.5]}, 1.0) == ("scores (length)", 2, 1)
    assert first_difference({"p": math.nan}, {"p": math.nan}, 0.0) is None
    assert first_difference({"p": 1.0}, {"p": 1}, 0.0) is None  # a score written without its decimals


def test_a_model_swap_through_the_admin_endpoint_runs_the_parity_gate(
    tmp_path: Path, serve_in_process: Callable[..., InProcess]
) -> None:
    (tmp_path / "trained").mkdir()
    source = words_project(tmp_path / "trained")
    trained(source)
    auth = {"authorization": "Bearer parity-token"}
    skewed = SERVICE.replace("query.text.lower()", "query.text")
    for name, service, status in (("skewed", skewed, 422), ("same", SERVICE, 200)):
        project = tmp_path / name
        project.mkdir()
        (project / "service.py").write_text(service)
        (project / "shipway.toml").write_text('name = "words"\n')
        shutil.copytree(source / "artifacts", project / "artifacts")
        shutil.copytree(source / "artifacts", project / "models" / "candidate")  # under deploy.root
        served = serve_in_process(project, env={"SHIPWAY_ADMIN_TOKEN": "parity-token"})
        candidate = str(project / "models" / "candidate")
        response = served.post("/admin/model", json={"artifacts": candidate}, headers=auth)
        assert response.status_code == status, response.text
        if status == 422:
            error = response.json()["error"]
            assert error["type"] == "gate_failed" and "refused by the parity gate" in error["message"]
            first = error["details"][0]  # the first differing example, with its trace
            assert first["where"] == "label" and (first["expected"], first["got"]) == ("pos", "neg")
            assert {s["stage"] for s in first["trace"]["stages"]} >= {"clean", "predict"}
