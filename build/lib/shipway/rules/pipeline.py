"""A project's pipeline with its rules, for the in-process and offline commands.

`shipway predict`, `explain`, the validation suites in-process and batch scoring all build
their pipeline here, so they answer as `/predict` does: the service's stages, then the
`rules` stage running the project's rules file, then the output schema. A running service
builds the same stages but swaps its rules from the store's history (serving/decisions.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipway.core.pipeline import Pipeline
from shipway.core.service import load_project, read_ids
from shipway.rules.live import META_SCHEMA, with_rules
from shipway.rules.ruleset import load_rules

__all__ = ["load_pipeline"]


def load_pipeline(
    target: str | Path,
    rules: bool | str | Path = True,
    overrides: Mapping[str, Any] | None = None,
) -> Pipeline:
    """Load a project's service (folder, service.py or module path) and build its pipeline.

    `rules` True runs the project's rules file (`rules.file`) as the last stage, as
    `shipway serve` runs it when the store holds no newer rules; a path runs that rules file
    instead; False runs no rules. `overrides` are settings by dotted key.
    """
    service, settings = load_project(target, overrides)
    artifacts = settings.path("artifacts")
    ids = {"service": settings["name"], **read_ids(artifacts, settings["version"] or None), "rules_version": None}
    pipeline = service.setup(artifacts, ids)
    if rules is True and settings["rules.file"]:
        file, name = settings.path("rules.file"), settings["rules.file"]
    elif isinstance(rules, (str, Path)) and not isinstance(rules, bool):
        file, name = Path(rules), str(rules)
    else:
        return pipeline
    ruleset = load_rules(
        file,
        input_schema=pipeline.input_schema.json_schema(),
        output_schema=pipeline.output_schema.json_schema(),
        filename=name,
        meta_schema=META_SCHEMA,
    )
    return with_rules(pipeline, ruleset)
