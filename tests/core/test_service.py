"""The service protocol: what a scientist writes, and the errors for getting it wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import shipway
from shipway.core.service import import_service, read_ids
from shipway.errors import LoadError, ServiceError


def write(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "service.py").write_text(source)
    return folder


def test_module_with_load_and_predict(tmp_path: Path) -> None:
    project = write(
        tmp_path / "svc",
        (
            "from pathlib import Path\n"
            "def load(artifacts: Path):\n"
            "    return (artifacts / 'scale.txt').read_text().strip()\n"
            "def predict(scale: str, x: float) -> float:\n"
            "    return x * float(scale)\n"
        ),
    )
    (project / "artifacts").mkdir()
    (project / "artifacts" / "scale.txt").write_text("3")
    shipway.write_manifest(project / "artifacts")
    module, root = import_service(project)
    assert root == project.resolve()
    pipeline = shipway.Service.from_module(module).setup(project / "artifacts")
    assert pipeline.run(2) == 6.0
    assert pipeline.run_batch([1, "2.5"]) == [3.0, 7.5]


def test_module_without_predict_is_refused(tmp_path: Path) -> None:
    module, _ = import_service(write(tmp_path / "svc", "def predit(x): return x\n"))
    with pytest.raises(ServiceError, match="defines no predict"):
        shipway.Service.from_module(module)


def test_predict_wanting_a_model_without_load(tmp_path: Path) -> None:
    module, _ = import_service(write(tmp_path / "svc", "def predict(model, x: int) -> int:\n    return x\n"))
    with pytest.raises(ServiceError, match="has no load"):
        shipway.Service.from_module(module).setup()


def test_load_failure_names_the_artifacts(tmp_path: Path) -> None:
    module, _ = import_service(
        write(
            tmp_path / "svc",
            (
                "def load(artifacts):\n    return open(artifacts / 'model.bin').read()\n"
                "def predict(m, x: int) -> int:\n    return x\n"
            ),
        )
    )
    with pytest.raises(LoadError, match="artifacts folder is") as info:
        shipway.Service.from_module(module).setup(tmp_path / "missing")
    assert "FileNotFoundError" in str(info.value)


def test_import_error_in_service_file(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"importing .* raised ModuleNotFoundError"):
        import_service(write(tmp_path / "svc", "import not_a_module_anywhere\n"))


def test_missing_folder_and_module(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"has no service\.py"):
        import_service(tmp_path)
    with pytest.raises(ServiceError, match="cannot import service"):
        import_service("no.such.module_here")


def test_duplicate_stage_names(tmp_path: Path) -> None:
    def predict(x: int) -> int:
        return x

    with pytest.raises(ServiceError, match="named 'predict'"):
        shipway.Service(predict, before=[predict]).setup()


def test_stage_with_three_parameters() -> None:
    def stage(a, b, c):  # type: ignore[no-untyped-def]
        return a

    with pytest.raises(ServiceError, match="takes 3 required parameters"):
        shipway.Service(lambda x: x, before=[stage]).setup()


def test_ids_from_manifest_then_hash(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "model.bin").write_bytes(b"weights")
    hashed = read_ids(artifacts)
    assert hashed["model_version"].startswith("sha256-")
    (artifacts / "model.bin").write_bytes(b"other weights")
    assert read_ids(artifacts)["model_version"] != hashed["model_version"]
    (artifacts / "manifest.json").write_text(json.dumps({"version": "v7", "dataset_version": "d1", "run_id": "r1"}))
    assert read_ids(artifacts) == {"model_version": "v7", "dataset_version": "d1", "run_id": "r1"}
    assert read_ids(artifacts, "pinned")["model_version"] == "pinned"
    assert read_ids(None)["model_version"] == "unversioned"
