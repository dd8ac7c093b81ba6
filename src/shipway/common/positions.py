"""The one reader for YAML files with positions: every node keeps its file, line and column.

Two ways in, one syntax check:

- `compose(text, file)`: the YAML's nodes (PyYAML's `Node`, each with `start_mark`), for
  readers that report every problem of a file at once (rules files, alert files);
- `load_located(text, file)`: plain data whose mappings and lists are `Located` and
  `LocatedList`, which remember their line and each key's (validation suites). A suite given
  as plain dicts (an expectation sent to /explain as JSON) has no lines; errors name the key.

Invalid YAML is one `Diagnostic` at the line and column where the parser stopped.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import Node

from shipway.common.diagnostics import Diagnostic

__all__ = ["Located", "LocatedList", "YamlSyntaxError", "compose", "line_of", "load_located", "position", "where"]


class YamlSyntaxError(ValueError):
    """Text that is not YAML; `diagnostic` says where the parser stopped and why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(str(diagnostic))
        self.diagnostic = diagnostic


def compose(text: str, file: str) -> Node | None:
    """The YAML's root node (None for an empty file); YamlSyntaxError when it is not YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise YamlSyntaxError(_syntax(err, file)) from None


def position(node: Node) -> tuple[int, int]:
    """The 1-based (line, column) where `node` starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def _syntax(err: yaml.YAMLError, file: str) -> Diagnostic:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return Diagnostic(file, line, column, "error", f"invalid YAML: {err.problem or err.context}")
    return Diagnostic(file, 0, 0, "error", f"invalid YAML: {err}")


class Located(dict[str, Any]):
    """A mapping from a YAML file that knows its own line and its keys' lines."""

    file: str = ""
    line: int = 0
    key_lines: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}


class LocatedList(list[Any]):
    """A sequence from a YAML file that knows its own line and its items' lines."""

    file: str = ""
    line: int = 0
    item_lines: list[int]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines = []


def where(node: Any, key: str | int | None = None, fallback: str = "") -> str:
    """`file:line` for `node` (or for its `key`), or `fallback` when it has no location."""
    if isinstance(node, Located) and node.file:
        line = node.key_lines.get(str(key), node.line) if key is not None else node.line
        return f"{node.file}:{line}"
    if isinstance(node, LocatedList) and node.file:
        line = node.item_lines[key] if isinstance(key, int) and key < len(node.item_lines) else node.line
        return f"{node.file}:{line}"
    return fallback


def line_of(node: Any, key: str | int | None = None) -> int | None:
    text = where(node, key)
    return int(text.rsplit(":", 1)[1]) if text else None


# -- load_located: libyaml when installed (5-10x faster), with lines ---------------

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    file = "<yaml>"


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Any:
    data = Located()
    data.file, data.line = loader.file, node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise YamlSyntaxError(
                Diagnostic(loader.file, line, 0, "error", f"a key must be a plain value, not {str(key)[:60]}")
            )
        name = str(key)
        if name in data:
            message = (
                f"the key {name!r} appears twice in one mapping (first at line {data.key_lines[name]}); "
                "YAML keeps only one. Give several values as a list"
            )
            raise YamlSyntaxError(Diagnostic(loader.file, line, 0, "error", message))
        data[name] = loader.construct_object(value_node, deep=True)
        data.key_lines[name] = line


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Any:
    data = LocatedList()
    data.file, data.line = loader.file, node.start_mark.line + 1
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_lines.append(item.start_mark.line + 1)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_located(text: str, file: str) -> Any:
    """The YAML's data, its mappings `Located` and its lists `LocatedList`; YamlSyntaxError when
    it is not YAML, or a key is repeated or not a plain value."""
    loader = _Loader(text)
    loader.file = file
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise YamlSyntaxError(_syntax(err, file)) from None
    finally:
        loader.dispose()
