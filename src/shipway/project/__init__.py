"""The project spine: a user's project folder loaded once (settings, service, the one way to
build its pipeline, its store handle, its gate policy and its mode); every command and
context takes its pipeline from here. See docs/architecture.md, "The spine"."""

from shipway.project._project import Project, RunOn, enforce, load_pipeline

__all__ = ["Project", "RunOn", "enforce", "load_pipeline"]
