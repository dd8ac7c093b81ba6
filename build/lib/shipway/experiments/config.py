"""A run's configuration: defaults from the training code, overridden by `--set key=value`.

An override names a key with dots (`classifier.C`); its value, a string from the command
line, is read as the type of the default it replaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shipway.errors import ConfigError

__all__ = ["apply_overrides", "flatten"]


def apply_overrides(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `defaults` with dotted-key overrides applied; a string value is read as
    the type of the value it replaces. An unknown key is an error naming the known ones."""
    resolved = orjson.loads(orjson.dumps(defaults, default=list))
    known = sorted(flatten(resolved))
    for dotted, raw in overrides.items():
        parts = dotted.split(".")
        node = resolved
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ConfigError(
                f"--set {dotted}={raw}: the configuration has no key {dotted!r}; "
                f"the keys are {', '.join(known) or '(none)'}"
            )
        node[parts[-1]] = _coerce(dotted, raw, node[parts[-1]])
    return resolved


def _coerce(key: str, raw: Any, current: Any) -> Any:
    if not isinstance(raw, str) or isinstance(current, str):
        return raw
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if raw.lower() in ("true", "false") and isinstance(current, bool):
            return raw.lower() == "true"
        raise ConfigError(
            f"--set {key}={raw}: {raw!r} is not a {type(current).__name__} like the default {current!r}; "
            "write numbers, true/false, or JSON lists"
        ) from None
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if current is not None and type(value) is not type(current):
        raise ConfigError(
            f"--set {key}={raw}: expected a {type(current).__name__} like the default {current!r}, "
            f"got {type(value).__name__}"
        )
    return value


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
