"""The one "did you mean" helper (shipway.common.suggest)."""

from __future__ import annotations

from shipway.common.suggest import closest, did_you_mean


def test_the_closest_name_in_both_styles() -> None:
    assert closest("lable", ["label", "text"]) == "label"
    assert did_you_mean("lable", ["label", "text"]) == " Did you mean 'label'?"
    assert did_you_mean("intnt", ["intent"], aside=True, prefix="output.") == " (did you mean output.intent?)"


def test_nothing_close_suggests_nothing() -> None:
    assert closest("zzz", ["label"]) is None
    assert did_you_mean("zzz", ["label"]) == did_you_mean("zzz", [], aside=True) == ""
