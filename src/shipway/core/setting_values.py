"""A setting's value checked against its declaration (core/settings.py), and shipway.toml flattened."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipway.common.suggest import did_you_mean
from shipway.errors import ConfigError

if TYPE_CHECKING:
    from shipway.core.setting import Setting

__all__ = ["check_value", "flatten", "unknown_setting"]


def flatten(data: dict[str, Any], by_key: Mapping[str, Setting], prefix: str = "") -> list[tuple[str, Any]]:
    """shipway.toml's nested tables as (dotted key, value) pairs; a setting whose type is a table stays whole."""
    out = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        table_setting = dotted in by_key and by_key[dotted].type is dict
        if isinstance(value, dict) and not table_setting:
            out.extend(flatten(value, by_key, dotted + "."))
        else:
            out.append((dotted, value))
    return out


def unknown_setting(key: str, where: object, by_key: Mapping[str, Setting]) -> str:
    """The message for a key no setting has, with the closest one."""
    hint = did_you_mean(key, by_key)
    return f"unknown setting {key!r} in {where}.{hint} The settings are listed in docs/settings.md."


def check_value(setting: Setting, value: Any, where: str) -> Any:
    """`value` when it fits `setting` (its type, choices and bounds); ConfigError naming both otherwise."""
    kind = setting.type
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(
            f"setting {setting.key!r} in {where} must be {kind.__name__}, got {value!r} "
            f"({type(value).__name__}). Default: {setting.default!r}."
        )
    if setting.choices is not None and value not in setting.choices:
        raise ConfigError(
            f"setting {setting.key!r} in {where} is {value!r}; it must be one of {', '.join(setting.choices)}."
        )
    if setting.minimum is not None and value < setting.minimum:
        raise ConfigError(f"setting {setting.key!r} in {where} is {value!r}; it must be at least {setting.minimum:g}.")
    if setting.maximum is not None and value > setting.maximum:
        raise ConfigError(f"setting {setting.key!r} in {where} is {value!r}; it must be at most {setting.maximum:g}.")
    return value
