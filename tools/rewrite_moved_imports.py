"""Rewrite imports and paths of modules that issue 16 moved (docs/architecture.md) in the given files.

    git ls-files -z src tests bench examples docs | xargs -0 python tools/rewrite_moved_imports.py

For a branch written against the old module paths: `shipway.monitoring.alert_rules` becomes
`shipway.monitoring.alerts.alert_rules`, `from shipway.monitoring import stats` becomes
`from shipway.monitoring.drift import _stats as stats`, `shipway/tokens.py` becomes
`shipway/web/tokens.py`. A path that is already new is left alone, so it can run twice.
Functions that were folded into one (durations, times, "did you mean") are not rewritten:
see the report of the change for those.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MOVES = [
    ("shipway.monitoring.drift", "shipway.monitoring.drift.comparison"),
    ("shipway.monitoring.drift_job", "shipway.monitoring.drift.job"),
    ("shipway.monitoring.checks", "shipway.monitoring.drift._checks"),
    ("shipway.monitoring.columns", "shipway.monitoring.drift._columns"),
    ("shipway.monitoring.profile", "shipway.monitoring.drift.profile"),
    ("shipway.monitoring.reference", "shipway.monitoring.drift._reference"),
    ("shipway.monitoring.stats", "shipway.monitoring.drift._stats"),
    ("shipway.monitoring.summaries", "shipway.monitoring.drift._summaries"),
    ("shipway.monitoring.text", "shipway.monitoring.drift.text_drift"),
    ("shipway.monitoring.thresholds", "shipway.monitoring.drift.thresholds"),
    ("shipway.monitoring.window", "shipway.monitoring.drift.window"),
    ("shipway.monitoring.alert_file", "shipway.monitoring.alerts.alert_file"),
    ("shipway.monitoring.alert_messages", "shipway.monitoring.alerts._messages"),
    ("shipway.monitoring.alert_rules", "shipway.monitoring.alerts.alert_rules"),
    ("shipway.monitoring.alerts", "shipway.monitoring.alerts.alerter"),
    ("shipway.monitoring.drift_values", "shipway.monitoring.alerts._drift_values"),
    ("shipway.monitoring.metrics", "shipway.monitoring.metrics.online"),
    ("shipway.monitoring.outcome_metrics", "shipway.monitoring.metrics.outcome_metrics"),
    ("shipway.inspection.report", "shipway.inspection.label_issues"),
    ("shipway.validation.report", "shipway.validation.rendering"),
    ("shipway.core.files", "shipway.core.user_files"),
    ("shipway.engine.files", "shipway.engine.row_batches"),
    ("shipway.inspection.datasets", "shipway.inspection.labelled_data"),
    ("shipway.experiments.datasets", "shipway.experiments.dataset_versions"),
    ("shipway.rules.check", "shipway.rules.spec_checks"),
    ("shipway.expect.source", "shipway.common.positions"),
    ("shipway.times", "shipway.common.times"),
    ("shipway.tokens", "shipway.web.tokens"),
    ("shipway.serving.http", "shipway.web.http"),
]


def rewrite(text: str) -> str:
    dotted = dict(MOVES)
    new_names = set(dotted.values())
    by_package: dict[str, dict[str, str]] = {}
    for old, new in MOVES:
        package, _, module = old.rpartition(".")
        by_package.setdefault(package, {})[module] = new

    def from_import(m: re.Match[str]) -> str:
        new = by_package.get(m.group(2), {}).get(m.group(3))
        if new is None:
            return m.group(0)
        package, _, module = new.rpartition(".")
        alias = "" if module == m.group(3) else f" as {m.group(3)}"
        return f"{m.group(1)}from {package} import {module}{alias}"

    def dotted_name(m: re.Match[str]) -> str:
        old, tail = m.group(1), m.group(2) or ""
        if old + tail in new_names or any(n.startswith(old + tail + ".") for n in new_names):
            return m.group(0)  # already the new path
        return dotted[old] + tail

    names = "|".join(sorted(map(re.escape, dotted), key=len, reverse=True))
    text = re.sub(r"^(\s*)from (shipway(?:\.\w+)*) import (\w+)$", from_import, text, flags=re.M)
    text = re.sub(r"(?<![\w.])(" + names + r")(?!\w)(\.\w+)?", dotted_name, text)
    paths = {o.replace(".", "/") + ".py": n.replace(".", "/") + ".py" for o, n in MOVES}
    path_names = "|".join(sorted(map(re.escape, paths), key=len, reverse=True))
    return re.sub(r"(?<![\w/])(" + path_names + r")(?!\w)", lambda m: paths[m.group(1)], text)


def main(files: list[str]) -> None:
    changed = 0
    for name in files:
        path = Path(name)
        if path.suffix not in (".py", ".md", ".toml", ".jinja", ".yaml", ".txt"):
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed += 1
    print(f"rewrote {changed} files")


if __name__ == "__main__":
    main(sys.argv[1:])
