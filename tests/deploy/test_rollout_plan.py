"""The rollout plan of shipway.toml: steps parsed from the settings, every bad step named with
its fix, and `${NAME}` in the channels read from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.core.settings import load_settings
from shipway.deploy.plan import load_plan, parse_steps
from shipway.errors import ConfigError


def test_the_default_plan_shadows_then_canaries_then_promotes(tmp_path: Path) -> None:
    plan = load_plan(load_settings(tmp_path), environ={})
    modes = [s.mode for s in plan.steps]
    assert modes[0] == "shadow" and modes[-1] == "promote" and "canary" in modes
    assert all(s.duration_s > 0 for s in plan.steps[:-1])
    assert [s.describe() for s in plan.steps[:2]] == ["shadow 100% for 30m", "canary 5% for 30m"]


def test_a_plan_from_shipway_toml_with_channels_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "shipway.toml").write_text(
        "[rollout]\n"
        'steps = [{mode = "shadow", share = 0.1, duration = "1h30m"}, {mode = "canary", share = 0.5, duration = 90},'
        ' {mode = "promote"}]\n'
        "min_agreement = 0.9\n"
        'webhook = "https://hooks.example/${ROLLOUT_SECRET}"\n'
        'slack = "${NOT_SET_ANYWHERE}"\n'
    )
    plan = load_plan(load_settings(tmp_path), environ={"ROLLOUT_SECRET": "s3"})
    assert [(s.mode, s.share, s.duration_s) for s in plan.steps] == [
        ("shadow", 0.1, 5400.0),
        ("canary", 0.5, 90.0),
        ("promote", 1.0, 0.0),
    ]
    assert plan.guards.min_agreement == 0.9
    assert plan.webhook == "https://hooks.example/s3"
    assert plan.slack == ""  # a secret not set leaves the channel off


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"mode": "canary", "duration": "1h"}, {"mode": "promote"}], "step 1: a canary step needs the share"),
        ([{"mode": "shadow"}, {"mode": "promote"}], 'step 1: a shadow step needs a duration, like duration = "30m"'),
        ([{"mode": "shadow", "duration": "soon"}, {"mode": "promote"}], "duration 'soon' is not a duration"),
        ([{"mode": "canary", "share": 5, "duration": "1h"}, {"mode": "promote"}], "share 5 must be a number above 0"),
        ([{"mode": "shdow", "duration": "1h"}, {"mode": "promote"}], "mode 'shdow' is not one of shadow, canary"),
        ([{"mode": "shadow", "duration": "1h", "sahre": 1}, {"mode": "promote"}], "remove sahre"),
        ([{"mode": "shadow", "duration": "1h"}], 'the last step, and only it, must be {mode = "promote"}'),
        ([{"mode": "promote"}], "put a shadow or canary step before promote"),
        ("shadow", "must be a list of steps"),
    ],
)
def test_a_bad_plan_names_the_step_and_the_fix(steps: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_steps(steps)
    assert message in str(caught.value)
    assert "docs/deploy.md#rollouts" in str(caught.value) or "must be a list" in str(caught.value)


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ConfigError, match=r"has 2 problems: step 1: .*; step 2: "):
        parse_steps([{"mode": "canary"}, {"mode": "shadow"}, {"mode": "promote"}])
