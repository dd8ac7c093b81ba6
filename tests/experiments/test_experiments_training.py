"""`shipway train` when the training step fails, and `shipway data build` when there is no dataset."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from shipway.cli.main import main as cli
from shipway.store import open_store

SERVICE = "def predict(item: dict) -> dict:\n    return item\n"


def project(root: Path, train: str) -> Path:
    (root / "service.py").write_text(SERVICE)
    (root / "shipway.toml").write_text(f'name = "broken"\n\n[train]\ncommand = "{train}"\n')
    (root / "build" / "dataset").mkdir(parents=True)
    (root / "build" / "dataset" / "train.jsonl").write_text(
        '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
    )
    return root


def test_a_failing_training_step_is_recorded_as_a_failed_run_with_its_output(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('loading the data')\nraise SystemExit('no GPU here')\n")
    root = project(tmp_path, "python train.py")
    result = CliRunner().invoke(cli, ["train", "--target", str(root), "--set", "a=1"])
    assert result.exit_code == 1
    assert "failed" in result.stdout and "no GPU here" in result.stdout
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        [run] = store.list_runs()
        run = store.get_run(run.id)
    assert run.status == "failed" and run.ended is not None
    assert "exited with code 1" in (run.error or "") and "no GPU here" in (run.error or "")
    assert run.overrides == {"a": "1"} and "log.txt" in run.artifacts
    assert run.dataset_version and run.task and run.task.endswith(":label:accuracy")


def test_a_dataset_folder_without_the_target_column_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path, "python train.py")
    (root / "shipway.toml").write_text('name = "broken"\n\n[data]\ncommand = "python -c pass"\ntarget = "category"\n')
    result = CliRunner().invoke(cli, ["data", "build", "--target", str(root)])
    assert result.exit_code == 1
    assert "has no column 'category' (the `data.target` setting); its columns are text, label" in result.output


def test_set_without_an_equals_sign_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path, "python train.py")
    result = CliRunner().invoke(cli, ["train", "--target", str(root), "--set", "C"])
    assert result.exit_code == 1
    assert "--set 'C' is not key=value" in result.output
    assert not (root / ".shipway" / "shipway.db").exists()
