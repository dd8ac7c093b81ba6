"""Reading alerts.yaml: the YAML's nodes into rules, with every problem reported at its file:line.

    channels:
      team: {slack: "${SHIPWAY_ALERTS_SLACK}"}      # ${VAR}: read from the environment
    alerts:
      - name: error rate
        metric: error_rate
        above: 0.02
        window: 15m
        min_requests: 100
        severity: critical
        channels: [team]

Problems are collected, not raised one by one, so that one run lists them all (docs/alerts.md).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from shipway.common.diagnostics import Diagnostics
from shipway.common.positions import YamlSyntaxError, compose
from shipway.common.suggest import did_you_mean
from shipway.common.times import parse_duration
from shipway.core.user_files import read_text
from shipway.errors import AlertError
from shipway.monitoring.alerts.alert_rules import (
    CHANNEL_KINDS,
    RULE_KEYS,
    SEVERITIES,
    TOP_KEYS,
    AlertRule,
    AlertRules,
    Channel,
    Metric,
    parse_metric,
)

__all__ = ["load_alerts", "parse_alerts"]

# ${NAME}: required (a warning when unset); ${NAME:-}: optional (the channel is off, quietly, when unset).
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-)?\}")


def load_alerts(path: str | Path, environ: Mapping[str, str] | None = None) -> AlertRules:
    """Read and check an alerts file; AlertError lists every problem with its file:line."""
    file = Path(path)
    text = read_text(file, "alerts file", "check monitoring.alerts_file.", AlertError)
    return parse_alerts(text, str(file), environ, path=file)


def parse_alerts(
    text: str, file: str = "alerts.yaml", environ: Mapping[str, str] | None = None, *, path: Path | None = None
) -> AlertRules:
    """The rules and channels in `text` (the content of `file`); `${VAR}` in a URL reads `environ`."""
    reader = _Reader(file, os.environ if environ is None else environ)
    rules = reader.read(text)
    if reader.problems:
        count = len(reader.problems)
        head = f"{file} has {count} problem{'s' if count > 1 else ''} (the format is in docs/alerts.md):"
        raise AlertError("\n".join([head, *reader.problems]), reader.problems)
    return AlertRules(tuple(rules), reader.channels, path, tuple(reader.warnings))


class _Reader:
    """Walks the YAML nodes, so that every problem carries the line it is on."""

    def __init__(self, file: str, environ: Mapping[str, str]) -> None:
        self.file = file
        self.environ = environ
        self.diags = Diagnostics(file)
        self.channels: dict[str, Channel] = {}
        self.declared: list[str] = []  # channel names, including those whose URL is wrong

    @property
    def problems(self) -> list[str]:
        """Every problem, in the order of the lines they are on."""
        return [str(d) for d in self.diags.sorted() if d.severity == "error"]

    @property
    def warnings(self) -> list[str]:
        return [str(d) for d in self.diags.sorted() if d.severity == "warning"]

    def problem(self, node: Node | None, message: str) -> None:
        self.diags.add("error", node.start_mark.line + 1 if node is not None else 0, 0, message)

    def read(self, text: str) -> list[AlertRule]:
        try:
            root = compose(text, self.file)
        except YamlSyntaxError as err:
            found = err.diagnostic
            self.diags.add("error", found.line, found.column, f"{found.message}; fix the syntax there")
            return []
        if root is None:
            self.problem(None, "the file is empty; it needs an `alerts:` list")
            return []
        top = self.mapping(root, "the alerts file", TOP_KEYS)
        if top is None:
            return []
        if "channels" in top:
            self.read_channels(top["channels"])
        if "alerts" not in top:
            self.problem(root, "there is no `alerts:` list; add one with at least one rule")
            return []
        node = top["alerts"]
        if not isinstance(node, SequenceNode):
            self.problem(node, f"`alerts` must be a list of rules (`- name: ...`), not {_shown(node)}")
            return []
        rules: list[AlertRule] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(node.value, start=1):
            rule = self.read_rule(item, index)
            if rule is None:
                continue
            if rule.name in seen:
                self.problem(
                    item,
                    f"alert {rule.name!r}: the name is used twice (first at line {seen[rule.name]}); "
                    "each alert needs its own name, which is the key its state is kept under",
                )
                continue
            seen[rule.name] = item.start_mark.line + 1
            rules.append(rule)
        return rules

    # -- shapes -----------------------------------------------------------------

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...]) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{what} must be a mapping with keys among {', '.join(allowed)}, not {_shown(node)}")
            return None
        out: dict[str, Node] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, ScalarNode) else _shown(key)
            if name in out:
                self.problem(key, f"{what}: the key {name!r} is given twice; keep one")
            elif name not in allowed:
                self.problem(
                    key,
                    f"{what}: unknown key {name!r}.{did_you_mean(name, allowed)} The keys are {', '.join(allowed)}",
                )
            else:
                out[name] = value
        return out

    def scalar(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            return node  # lists and mappings are reported by the caller, which knows what it wanted
        try:
            return SafeConstructor().construct_object(node)
        except ConstructorError:
            return node.value

    def text(self, node: Node, what: str) -> str | None:
        value = self.scalar(node)
        if isinstance(value, str) and value.strip():
            return value.strip()
        self.problem(node, f"{what} must be text, not {_shown(node)}")
        return None

    def count(self, node: Node, what: str) -> int | None:
        value = self.scalar(node)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self.problem(node, f"{what} must be a whole number of at least 0, like 100, not {_shown(node)}")
        return None

    # -- channels ----------------------------------------------------------------

    def read_channels(self, node: Node) -> None:
        if not isinstance(node, MappingNode):
            self.problem(
                node, f"`channels` must map channel names to {{slack: URL}} or {{webhook: URL}}, not {_shown(node)}"
            )
            return
        for key, value in node.value:
            name = str(key.value) if isinstance(key, ScalarNode) else _shown(key)
            if name in self.declared:
                self.problem(key, f"channel {name!r} is defined twice; keep one")
                continue
            self.declared.append(name)
            before = len(self.diags.errors)
            keys = self.mapping(value, f"channel {name!r}", CHANNEL_KINDS)
            if keys is None or len(self.diags.errors) > before:
                continue
            if len(keys) != 1:
                self.problem(value, f"channel {name!r} needs exactly one of slack: URL or webhook: URL")
                continue
            kind, url_node = next(iter(keys.items()))
            what = f"channel {name!r}: the {kind} URL"
            raw = self.text(url_node, what)
            unset = [m for m in _ENV.finditer(raw or "") if not self.environ.get(m.group(1))]
            missing = [m.group(1) for m in unset]
            if raw is not None and missing and all(m.group(2) for m in unset):
                # Optional: a channel for the places that have its secret (production), off elsewhere.
                self.channels[name] = Channel(name, kind, raw, unset=missing[0], optional=True)
                continue
            if raw is not None and missing:
                # A secret that is not set here (a laptop, CI) must not stop the service or the
                # other channels: the rules still evaluate, and each message to it fails loudly.
                self.diags.add(
                    "warning",
                    url_node.start_mark.line + 1,
                    0,
                    f"{what} uses ${{{missing[0]}}}, which is not set in the environment; "
                    f"messages to {name!r} fail until {missing[0]} is exported where alerts are evaluated",
                )
                self.channels[name] = Channel(name, kind, raw, unset=missing[0])
                continue
            url = self.url(url_node, raw, what)
            if url is not None:
                self.channels[name] = Channel(name, kind, url)

    def url(self, node: Node, raw: str | None, what: str) -> str | None:
        if raw is None:
            return None
        url = _ENV.sub(lambda m: self.environ[m.group(1)], raw)
        if not re.match(r"https?://[^/\s]+", url):
            # A URL filled in from the environment is a secret: say where it came from, not what it is.
            shown = repr(raw) if _ENV.search(raw) is None else f"what {raw!r} gives (not shown: it is a secret)"
            self.problem(node, f"{what} must start with https:// or http://, not {shown}")
            return None
        return url

    # -- rules ---------------------------------------------------------------------

    def read_rule(self, node: Node, index: int) -> AlertRule | None:
        before = len(self.diags.errors)
        label = f"alert {index}"
        if isinstance(node, MappingNode):  # named, so that every problem can say which alert it is in
            named = [v for k, v in node.value if isinstance(k, ScalarNode) and k.value == "name"]
            if named and isinstance(named[0], ScalarNode) and str(named[0].value).strip():
                label = f"alert {str(named[0].value).strip()!r}"
        keys = self.mapping(node, label, RULE_KEYS)
        if keys is None:
            return None
        name = self.text(keys["name"], f"alert {index}: name") if "name" in keys else None
        if "name" not in keys:
            self.problem(node, f"alert {index} has no name; add `name:`, the key its firing state is kept under")

        metric: Metric | None = None
        if "metric" not in keys:
            self.problem(node, f"{label} has no metric; add e.g. `metric: error_rate` (docs/alerts.md lists them)")
        else:
            text = self.text(keys["metric"], f"{label}: metric")
            if text is not None:
                try:
                    metric = parse_metric(text)
                except ValueError as err:
                    self.problem(keys["metric"], f"{label}: {err}")

        comparison, threshold = self.threshold(node, keys, label)
        window, window_s = self.window(node, keys, label)

        sample = metric.sample if metric is not None else "requests"
        min_requests = 0 if sample == "none" else 1
        min_labelled = 1 if sample in ("labelled", "outcome") else 0
        if "min_requests" in keys:
            min_requests = self.count(keys["min_requests"], f"{label}: min_requests") or 0
        if "min_labelled" in keys:
            min_labelled = self.count(keys["min_labelled"], f"{label}: min_labelled") or 0

        severity = "warning"
        if "severity" in keys:
            value = self.scalar(keys["severity"])
            if value in SEVERITIES:
                severity = str(value)
            else:
                self.problem(
                    keys["severity"],
                    f"{label}: severity must be one of {', '.join(SEVERITIES)}, not {_shown(keys['severity'])}",
                )

        channels = self.rule_channels(keys.get("channels"), label)
        description = ""
        if "description" in keys:
            description = self.text(keys["description"], f"{label}: description") or ""

        if len(self.diags.errors) > before or name is None or metric is None or comparison is None:
            return None
        assert threshold is not None and window_s is not None  # set whenever no problem was added
        return AlertRule(
            name=name,
            metric=metric,
            comparison=comparison,
            threshold=threshold,
            window=window,
            window_s=window_s,
            min_requests=min_requests,
            min_labelled=min_labelled,
            severity=severity,
            channels=channels,
            description=description,
            where=f"{self.file}:{node.start_mark.line + 1}",
        )

    def threshold(self, node: Node, keys: dict[str, Node], label: str) -> tuple[str | None, float | None]:
        given = [k for k in ("above", "below") if k in keys]
        if len(given) != 1:
            what = "both above and below" if given else "neither above nor below"
            self.problem(node, f"{label} has {what}; give one threshold, e.g. `above: 0.05` or `below: 0.9`")
            return None, None
        comparison = given[0]
        value = self.scalar(keys[comparison])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problem(
                keys[comparison],
                f"{label}: the threshold `{comparison}:` must be a number, like 0.05, not {_shown(keys[comparison])}",
            )
            return None, None
        return comparison, float(value)

    def window(self, node: Node, keys: dict[str, Node], label: str) -> tuple[str, float | None]:
        if "window" not in keys:
            self.problem(
                node, f"{label} has no window; add e.g. `window: 15m` (the span each evaluation looks back over)"
            )
            return "", None
        value = self.scalar(keys["window"])
        if not isinstance(value, str):
            self.problem(
                keys["window"], f"{label}: window {_shown(keys['window'])} needs a unit; write it like 15m, 1h or 1d"
            )
            return "", None
        try:
            return value.strip(), parse_duration(value, "window")
        except ValueError as err:
            self.problem(keys["window"], f"{label}: {err}")
            return "", None

    def rule_channels(self, node: Node | None, label: str) -> tuple[str, ...]:
        if node is None:
            return tuple(self.declared)  # by default, every channel the file defines
        if isinstance(node, SequenceNode):
            items = node.value
        elif isinstance(node, ScalarNode):
            items = [node]
        else:
            self.problem(node, f"{label}: channels must be a list of channel names, not {_shown(node)}")
            return ()
        names: list[str] = []
        for item in items:
            name = self.text(item, f"{label}: a channel")
            if name is None:
                continue
            if name not in self.declared:
                defined = ", ".join(self.declared) if self.declared else "none (add a `channels:` section)"
                self.problem(
                    item,
                    f"{label}: unknown channel {name!r}.{did_you_mean(name, self.declared)} "
                    f"The channels defined under `channels:` are {defined}",
                )
                continue
            names.append(name)
        return tuple(names)


def _shown(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return repr(node.value) if node.style or node.tag.endswith(":str") else str(node.value)
    return "a list" if isinstance(node, SequenceNode) else "a mapping"
