"""Suite files: YAML lists of cases, read with errors that point at file:line.

The format is documented in docs/validation.md. In short:

    name: intents                 # default: the file's name
    target: ..                    # the project folder; default: the nearest folder up with service.py
    input_field: text             # `input: "..."` then means {"text": "..."}
    fields: {label: intent}       # where the label, probability and ranked list are
    cases:
      - name: card has not arrived
        input: "My card still has not come"
        expect: {label: card_arrival}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipway.common.positions import YamlSyntaxError, line_of, load_located, where
from shipway.common.suggest import did_you_mean
from shipway.core.user_files import read_text
from shipway.errors import SuiteError
from shipway.expect.cases import Case, Direction, Invariance
from shipway.expect.fields import Fields, shorten
from shipway.expect.parsing import parse_expectations

__all__ = ["Suite", "find_suites", "is_suite_file", "load_suite", "load_suites", "parse_suite"]

SUITE_KEYS = ("name", "description", "target", "input_field", "fields", "cases")
CASE_KEYS = ("name", "input", "expect", "invariance", "direction", "expect_failure", "reason")
SUFFIXES = (".yaml", ".yml")


@dataclass
class Suite:
    """A named list of cases, with the fields mapping they share."""

    name: str
    cases: list[Case]
    fields: Fields = field(default_factory=Fields)
    path: Path | None = None
    target: Path | None = None  # the project folder the suite runs against by default
    description: str = ""


# -- YAML with lines: shipway.common.positions ------------------------------------


def read_yaml(text: str, file: str) -> Any:
    try:
        return load_located(text, file)
    except YamlSyntaxError as err:
        raise SuiteError(f"{err}. Fix it there.") from None


def plain(value: Any) -> Any:
    """Located containers as plain dicts and lists, for inputs sent to the service."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# -- suites --------------------------------------------------------------------


def load_suite(path: str | Path) -> Suite:
    """Read and check one suite file."""
    file = Path(path)
    return parse_suite(read_yaml(read_text(file, "suite file", "check the path.", SuiteError), str(file)), path=file)


def load_suites(paths: Iterable[str | Path]) -> list[Suite]:
    """Suites from files, and from folders (their *.yaml and *.yml files, sorted)."""
    suites: list[Suite] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix in SUFFIXES)
            if not files:
                raise SuiteError(f"{p} holds no suite files (*.yaml); pass suite files or a folder of them.")
            suites.extend(load_suite(f) for f in files)
        else:
            suites.append(load_suite(p))
    names: dict[str, Path | None] = {}
    for suite in suites:
        if suite.name in names:
            raise SuiteError(
                f"two suites are named {suite.name!r} ({names[suite.name]} and {suite.path}); "
                f"give one a different `name:`."
            )
        names[suite.name] = suite.path
    return suites


def find_suites(project: str | Path) -> list[Path]:
    """The suite files of a project: validation/*.yaml (and *.yml)."""
    folder = Path(project) / "validation"
    return sorted(f for f in folder.iterdir() if f.suffix in SUFFIXES) if folder.is_dir() else []


def is_suite_file(path: Path) -> bool:
    """What the pytest plugin collects: suite_*.yaml, *.suite.yaml, or validation/*.yaml with `cases:`."""
    if path.suffix not in SUFFIXES:
        return False
    if path.name.startswith("suite_") or path.stem.endswith(".suite"):
        return True
    if path.parent.name != "validation":
        return False
    try:
        return re.search(r"^cases\s*:", path.read_text(encoding="utf-8"), flags=re.M) is not None
    except (OSError, UnicodeDecodeError):
        return False


def project_of(file: Path) -> Path | None:
    """The nearest folder at or above `file` that holds shipway.toml or service.py."""
    for folder in file.resolve().parents:
        if (folder / "shipway.toml").is_file() or (folder / "service.py").is_file():
            return folder
    return None


def parse_suite(data: Any, path: Path | None = None, name: str | None = None) -> Suite:
    """A suite from its parsed YAML (or an equivalent dict built in code)."""
    file = str(path) if path else "suite"
    if not isinstance(data, Mapping):
        raise SuiteError(f"{file}: a suite file is a mapping with a `cases:` list; this one holds {shorten(data, 60)}.")
    _known(data, SUITE_KEYS, "suite")
    if "cases" not in data:
        raise SuiteError(f"{where(data, fallback=file)}: the suite has no `cases:` list; add one.")
    suite_name = str(data.get("name") or name or (path.stem.removesuffix(".suite") if path else "suite"))
    fields = Fields.parse(data.get("fields"))
    input_field = data.get("input_field")
    if input_field is not None and (not isinstance(input_field, str) or not input_field):
        raise SuiteError(f"{where(data, 'input_field', file)}: `input_field` must be a field name like `text`.")
    target = None
    if data.get("target") is not None:
        base = path.parent if path else Path.cwd()
        target = (base / str(data["target"])).resolve()
        if not target.exists():
            raise SuiteError(f"{where(data, 'target', file)}: the suite's target {target} does not exist.")
    elif path is not None:
        target = project_of(path)
    cases_node = data["cases"]
    if not isinstance(cases_node, list) or not cases_node:
        raise SuiteError(f"{where(data, 'cases', file)}: `cases` must be a non-empty list of cases.")
    cases: list[Case] = []
    seen: dict[str, int | None] = {}
    for i, node in enumerate(cases_node):
        case = _case(cases_node, i, node, suite_name, input_field)
        if case.name in seen:
            raise SuiteError(
                f"{where(cases_node, i, file)}: two cases are named {case.name!r} (the other at line "
                f"{seen[case.name]}); case names must be unique in a suite."
            )
        seen[case.name] = case.line
        cases.append(case)
    return Suite(suite_name, cases, fields, path, target, str(data.get("description") or ""))


def _known(node: Mapping[str, Any], keys: tuple[str, ...], what: str) -> None:
    for key in node:
        if key not in keys:
            raise SuiteError(
                f"{where(node, key, what)}: unknown {what} key {key!r}; the keys are {', '.join(keys)}."
                f"{did_you_mean(str(key), keys)}"
            )


def _input(value: Any, input_field: str | None) -> Any:
    if input_field is not None and isinstance(value, str):
        return {input_field: value}
    return plain(value)


def _case(parent: Any, index: int, node: Any, suite: str, input_field: str | None) -> Case:
    at = where(parent, index, f"case {index + 1}")
    if not isinstance(node, Mapping):
        raise SuiteError(f"{at}: a case is a mapping with `input:` and `expect:`, not {shorten(node, 60)}.")
    _known(node, CASE_KEYS, "case")
    if "input" not in node:
        raise SuiteError(f"{at}: the case has no `input:`; give the input to send to the service.")
    item = _input(node["input"], input_field)
    name = str(node["name"]) if node.get("name") is not None else shorten(node["input"], 60)
    expect = parse_expectations(node["expect"]) if "expect" in node else []
    if "invariance" in node and "direction" in node:
        raise SuiteError(f"{at}: a case has `invariance` or `direction`, not both; split it in two cases.")
    behaviour: Invariance | Direction | None = None
    if "invariance" in node:
        behaviour = _invariance(node, node["invariance"], input_field)
    elif "direction" in node:
        behaviour = _direction(node, node["direction"], input_field)
    if not expect and behaviour is None:
        raise SuiteError(f"{at}: case {name!r} checks nothing; add `expect:`, `invariance:` or `direction:`.")
    flag = node.get("expect_failure", False)
    if not isinstance(flag, (bool, str)):
        raise SuiteError(f"{where(node, 'expect_failure', at)}: `expect_failure` is true, false or a reason.")
    reason = flag if isinstance(flag, str) else node.get("reason")
    return Case(
        name=name,
        input=item,
        expect=expect,
        behaviour=behaviour,
        expect_failure=bool(flag),
        reason=None if reason is None else str(reason),
        suite=suite,
        file=getattr(node, "file", None) or None,
        line=line_of(parent, index),
    )


def _variants(node: Any, key: str, value: Any, input_field: str | None) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{where(node, key, key)}: `{key}` must be a non-empty list of inputs.")
    return [_input(v, input_field) for v in value]


def _number(node: Any, key: str, value: Any, minimum: float = 0.0) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
        raise SuiteError(f"{where(node, key, key)}: `{key}` must be a number of at least {minimum:g}, not {value!r}.")
    return float(value)


def _invariance(case: Any, value: Any, input_field: str | None) -> Invariance:
    if isinstance(value, list):  # the short form: just the rewordings
        return Invariance(_variants(case, "invariance", value, input_field))
    if not isinstance(value, Mapping):
        raise SuiteError(f"{where(case, 'invariance', 'invariance')}: `invariance` takes {{variants: [...]}}.")
    _known(value, ("variants", "tolerance"), "invariance")
    if "variants" not in value:
        raise SuiteError(f"{where(value, fallback='invariance')}: `invariance` needs `variants:`, the rewordings.")
    tolerance = _number(value, "tolerance", value["tolerance"]) if value.get("tolerance") is not None else None
    return Invariance(_variants(value, "variants", value["variants"], input_field), tolerance)


def _direction(case: Any, value: Any, input_field: str | None) -> Direction:
    if not isinstance(value, Mapping):
        raise SuiteError(
            f"{where(case, 'direction', 'direction')}: `direction` takes {{variants: [...], raises: probability}}."
        )
    _known(value, ("variants", "raises", "lowers", "label", "by"), "direction")
    if "variants" not in value:
        raise SuiteError(f"{where(value, fallback='direction')}: `direction` needs `variants:`, the changed inputs.")
    if ("raises" in value) == ("lowers" in value):
        raise SuiteError(
            f"{where(value, fallback='direction')}: `direction` needs exactly one of `raises:` and `lowers:` "
            f"(`probability`, or the path of a numeric field)."
        )
    score = value.get("raises", value.get("lowers"))
    if not isinstance(score, str) or not score:
        raise SuiteError(f"{where(value, fallback='direction')}: the score must be `probability` or a field path.")
    by = _number(value, "by", value["by"]) if "by" in value else 0.0
    return Direction(
        _variants(value, "variants", value["variants"], input_field),
        raises="raises" in value,
        score=score,
        label=value.get("label"),
        by=by,
    )
