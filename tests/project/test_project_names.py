"""shipway.project's public names, pinned: changing them is a decision."""

from __future__ import annotations

import shipway.project


def test_the_public_names_are_pinned() -> None:
    assert shipway.project.__all__ == ["Project", "RunOn", "enforce", "load_pipeline"]
    for name in shipway.project.__all__:
        assert getattr(shipway.project, name) is not None
