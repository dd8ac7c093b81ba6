"""`shipway rollout` and `shipway monitor report` over a project's real SQLite store: start,
status, compare, abort and start again, a plan refused with its problem named, and the
candidate's comparison in the report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from store_fixtures import make_record

from shipway.cli.main import main as cli
from shipway.cli.rollout import rollout_jobs
from shipway.core.settings import load_settings
from shipway.registry import current_candidate
from shipway.store import open_store
from shipway.store.registry import ModelVersion
from shipway.store.version_comparison import SHADOW_SUFFIX

pytest_plugins = ["store_fixtures"]

LIVE, CAND = "live-cccc", "cand-dddd"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "shipway.toml").write_text(
        'name = "svc"\n[store]\nurl = "sqlite:///store.db"\n[rollout]\nmin_requests = 5\nmin_agreement = 0.9\n'
    )
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        for version in (LIVE, CAND):
            store.register_model_version(ModelVersion(version, version[-4:] * 16))
    return tmp_path


def _shadowed(project: Path, n: int) -> None:
    """n requests, each answered by the live version and shadowed by the candidate, which says
    "refund" where the live version says "top_up"."""
    now = time.time()
    records = []
    for i in range(n):
        live = "top_up" if i % 2 else "card_lost"
        cand = "refund" if live == "top_up" else live
        text = orjson.dumps({"text": f"<b>message {i}</b>"})
        records.append(
            make_record(
                i,
                request_id=f"r{i}",
                ts=now + i * 0.01,
                model_version=LIVE,
                inputs=text,
                outputs=orjson.dumps({"intent": live}),
            )
        )
        records.append(
            make_record(
                i,
                request_id=f"r{i}{SHADOW_SUFFIX}",
                ts=now + i * 0.01 + 0.005,
                model_version=CAND,
                inputs=text,
                outputs=orjson.dumps({"intent": cand}),
            )
        )
    with open_store(f"sqlite:///{project / 'store.db'}") as store:
        store.write_predictions(records)


def test_start_status_compare_abort_and_start_again(project: Path) -> None:
    runner = CliRunner()
    target = ["--target", str(project)]
    started = runner.invoke(cli, ["rollout", "start", "cand", *target, "--actor", "ana", "--no-parity"])
    assert started.exit_code == 0, started.output
    assert f"started: {CAND} is shadow" in started.output

    again = runner.invoke(cli, ["rollout", "start", CAND, *target, "--no-parity"])
    assert again.exit_code == 1 and "already rolling out" in again.output

    _shadowed(project, 10)
    compared = runner.invoke(cli, ["rollout", "compare", *target, "--json"])
    assert compared.exit_code == 0, compared.output
    data = json.loads(compared.output)
    assert (data["paired"], data["agreed"]) == (10, 5)
    assert data["disagreements"][0]["live"] == "top_up" and data["disagreements"][0]["candidate"] == "refund"

    status = runner.invoke(cli, ["rollout", "status", *target])
    assert status.exit_code == 0, status.output
    assert "step 1/4" in status.output and "agreement: 50.0% of 10" in status.output
    assert "top_up -> refund: 5" in status.output

    aborted = runner.invoke(cli, ["rollout", "abort", *target, "--reason", "checking labels", "--json"])
    assert aborted.exit_code == 0, aborted.output
    assert (
        json.loads(aborted.output)["state"]["reason"]
        == "aborted by " + json.loads(aborted.output)["state"]["actor"] + ": checking labels"
    )
    restarted = runner.invoke(cli, ["rollout", "start", CAND, *target, "--no-parity"])
    assert restarted.exit_code == 0, restarted.output
    history = json.loads(runner.invoke(cli, ["rollout", "status", *target, "--json"]).output)["history"]
    assert [h["mode"] for h in history] == ["shadow", "rolled_back", "shadow"]


def test_run_once_rolls_back_on_the_agreement_guard(project: Path) -> None:
    runner = CliRunner()
    target = ["--target", str(project)]
    assert runner.invoke(cli, ["rollout", "start", CAND, *target, "--no-parity"]).exit_code == 0
    _shadowed(project, 10)
    ran = runner.invoke(cli, ["rollout", "run", *target, "--once"])
    assert ran.exit_code == 0, ran.output
    assert ran.output.startswith(f"rolled_back: {CAND} is rolled_back")
    assert "agreement with the live version 50.0% is below 90.0% over 10 requests" in ran.output
    assert "most often 'top_up' -> 'refund', 5 times" in ran.output


def test_a_bad_plan_is_refused_naming_the_step(project: Path) -> None:
    (project / "shipway.toml").write_text(
        'name = "svc"\n[store]\nurl = "sqlite:///store.db"\n[rollout]\n'
        'steps = [{mode = "canary", duration = "1h"}, {mode = "promote"}]\n'
    )
    result = CliRunner().invoke(cli, ["rollout", "status", "--target", str(project)])
    assert result.exit_code == 1
    assert "step 1: a canary step needs the share" in result.output


def test_the_report_shows_the_candidate_against_the_live_version(project: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["rollout", "start", CAND, "--target", str(project), "--no-parity"]).exit_code == 0
    _shadowed(project, 10)
    out = tmp_path / "report.html"
    result = runner.invoke(
        cli, ["monitor", "report", str(project), "--since", "1h", "--until", str(time.time() + 60), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    section = html[html.index('<section id="candidate">') :]
    section = section[: section.index("</section>")]
    assert CAND in section and LIVE in section and "50.0%" in section
    assert "&lt;b&gt;message" in section and "<b>message" not in section  # customer text escaped


def test_serve_runs_the_controller_as_a_worker_job(project: Path) -> None:
    settings = load_settings(project)
    ((every, check),) = rollout_jobs(settings)
    assert every == settings["rollout.check_every_s"]
    assert CliRunner().invoke(cli, ["rollout", "start", CAND, "--target", str(project), "--no-parity"]).exit_code == 0
    _shadowed(project, 10)
    check()  # what each `shipway serve` worker calls on its jobs thread
    with open_store(f"sqlite:///{project / 'store.db'}") as store:
        state = current_candidate(store, "svc")
    assert state is not None and state.mode == "rolled_back" and "agreement" in state.reason
    assert state.actor.startswith("rollout controller (")
    assert rollout_jobs(settings.replace(rollout__in_serve=False)) == []
