"""The service checker (`shipway check`): what is wrong with a service, before it is deployed.

It loads the project as `shipway serve` would and runs the service in-process:

    settings     shipway.toml reads
    service      service.py imports and follows the protocol
    schemas      the type hints make input and output schemas; predict's output matches its own
    artifacts    the artifacts folder, its manifest.json, and every file the manifest lists
    load         load() runs
    example      `example` (and `examples`) match the input schema
    json         every output serialises to JSON and comes back unchanged
    batch        predict_batch gives what predict gives on the same inputs, in either order
    determinism  the same input gets the same answer twice, unless `deterministic = False`
    default      `default` (the answer in modes off and shadow) matches the output schema

Two module-level names are read by the checker only: `examples`, a list of inputs to compare the
batch and single forms on, and `deterministic`. Like scikit-learn's check_estimator, it is a test
of the protocol, not of the model's quality: that is what validation suites are for.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from shipway.core.pipeline import Pipeline
from shipway.core.service import Service, import_service, read_ids
from shipway.core.settings import Settings, load_settings
from shipway.errors import ShipwayError

__all__ = ["Finding", "Report", "check_project"]

# Batch and single forms may differ by float rounding (BLAS kernels differ with the batch size).
REL_TOLERANCE = 1e-6
ABS_TOLERANCE = 1e-9


@dataclass
class Finding:
    check: str
    status: str  # "ok", "fail", "warn" or "skip"
    message: str


@dataclass
class Report:
    target: Path
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    def add(self, check: str, status: str, message: str) -> None:
        self.findings.append(Finding(check, status, message))

    def render(self) -> str:
        lines = [f"shipway check {self.target}"]
        for f in self.findings:
            mark = {"ok": "ok", "fail": "FAIL", "warn": "warn", "skip": "skip"}[f.status]
            first, *rest = f.message.splitlines() or [""]
            lines.append(f"  {mark:<5} {f.check:<12} {first}")
            lines += [f"  {'':<5} {'':<12} {line}" for line in rest]
        failed, warned = len(self.problems), sum(f.status == "warn" for f in self.findings)
        if failed:
            lines.append(f"{failed} problem{'s' if failed > 1 else ''} to fix before deploying.")
        else:
            lines.append("no problems" + (f" ({warned} warning{'s' if warned > 1 else ''})." if warned else "."))
        return "\n".join(lines)


def check_project(target: str | Path) -> Report:
    """Check the service in `target` (a project folder, or its service.py)."""
    path = Path(target)
    root = path.parent if path.suffix == ".py" else path
    report = Report(path.resolve())
    if not root.is_dir():
        report.add("settings", "fail", f"{root} is not a folder; pass the project folder (where service.py is).")
        return report
    try:
        settings = load_settings(root)
    except ShipwayError as err:
        report.add("settings", "fail", str(err))
        return report
    report.add("settings", "ok", "shipway.toml reads" if (root / "shipway.toml").exists() else "defaults (no shipway.toml)")

    loaded = _import(report, path, settings)
    if loaded is None:
        return report
    module, service = loaded
    if not _schemas(report, service):
        return report
    artifacts = settings.path("artifacts")
    _artifacts(report, service, artifacts)
    if not _load(report, service, artifacts):
        return report
    pipeline = service.setup(artifacts, {"service": settings["name"], **read_ids(artifacts, settings["version"] or None)})
    inputs = _inputs(report, module, service, pipeline)
    _default(report, service, pipeline)
    if not inputs:
        return report
    singles = _predict(report, pipeline, inputs)
    if singles is None:
        return report
    _json(report, pipeline, singles)
    _batch(report, service, pipeline, inputs, singles)
    _determinism(report, module, pipeline, inputs, singles)
    return report


# -- the checks ---------------------------------------------------------------------------------


def _import(report: Report, path: Path, settings: Settings) -> tuple[Any, Service] | None:
    root = settings.root
    name = settings["service"]
    target: str | Path = path if path.suffix == ".py" else (root / name if name.endswith(".py") else name)
    try:
        module, _ = import_service(target)
        service = Service.from_module(module)
    except ShipwayError as err:
        report.add("service", "fail", str(err))
        return None
    parts = [n for n in ("predict", "predict_batch", "load", "before", "after", "example", "default", "redact") if hasattr(module, n)]
    report.add("service", "ok", f"{Path(getattr(module, '__file__', name)).name}: {', '.join(parts)}")
    return module, service


def _schemas(report: Report, service: Service) -> bool:
    try:
        in_schema, out_schema = service.schemas()
    except ShipwayError as err:
        report.add("schemas", "fail", str(err))
        return False
    untyped = [role for role, s in (("input", in_schema), ("output", out_schema)) if s.hint is Any]
    if untyped:
        what = " and ".join(untyped)
        report.add(
            "schemas",
            "warn",
            f"no {what} type: predict's {'parameter and return' if len(untyped) == 2 else ('parameter' if untyped == ['input'] else 'return')} "
            f"annotation is missing, so the {what} schema accepts anything and clients, rules and this "
            f"check cannot know what to expect. Annotate it, e.g. `def predict(item: MyInput) -> MyOutput`.",
        )
    else:
        report.add("schemas", "ok", f"input {in_schema.name}, output {out_schema.name}")
    return True


def _artifacts(report: Report, service: Service, folder: Path) -> None:
    takes_folder = service.load is not None and _takes_argument(service.load)
    if not folder.is_dir():
        if takes_folder:
            report.add(
                "artifacts",
                "fail",
                f"artifacts missing: {folder} does not exist, and load() reads it. Train the model "
                f"(python train.py) to create it, or set `artifacts` in shipway.toml.",
            )
        else:
            report.add("artifacts", "skip", f"no artifacts folder ({folder}), and load() does not take one")
        return
    manifest_file = folder / "manifest.json"
    if not manifest_file.is_file():
        report.add(
            "artifacts",
            "warn",
            f"{folder} has no manifest.json: predictions carry a hash of the folder as model version and no "
            f"dataset version or run id. Write one from the training script (docs: service.md, Model ids).",
        )
        return
    try:
        manifest = json.loads(manifest_file.read_text())
    except ValueError as err:
        report.add("artifacts", "fail", f"{manifest_file} is not valid JSON ({err}); fix it or train again.")
        return
    if not isinstance(manifest, dict):
        report.add("artifacts", "fail", f"{manifest_file} must hold a JSON object, not {type(manifest).__name__}.")
        return
    problems = _manifest_files(folder, manifest.get("files"))
    if problems:
        report.add("artifacts", "fail", "\n".join(problems))
        return
    absent = [key for key in ("version", "dataset_version", "run_id") if not manifest.get(key)]
    listed = manifest.get("files") or {}
    summary = f"{folder.name}/manifest.json: version {manifest.get('version')}" + (
        f", {len(listed)} file{'s' if len(listed) != 1 else ''} as listed" if listed else ""
    )
    if absent:
        report.add(
            "artifacts",
            "warn",
            f"{summary}; it has no {', '.join(absent)}, so predictions cannot be traced to the data and run that made the model.",
        )
    else:
        report.add("artifacts", "ok", summary)


def _manifest_files(folder: Path, files: Any) -> list[str]:
    """What is wrong with the files manifest.json lists: a list of names, or names to sha256."""
    if files is None:
        return []
    if isinstance(files, list):
        files = dict.fromkeys(files)
    if not isinstance(files, dict):
        return [f"manifest.json `files` must list file names (or map them to their sha256), not {type(files).__name__}."]
    problems = []
    for name, expected in files.items():
        file = folder / str(name)
        if not file.is_file():
            problems.append(
                f"artifacts missing: manifest.json lists {name}, which is not in {folder}. Train again, or copy the "
                f"whole artifacts folder."
            )
        elif expected and hashlib.sha256(file.read_bytes()).hexdigest() != expected:
            problems.append(
                f"artifacts changed: {name} is not the file manifest.json describes (its sha256 differs). Train again, "
                f"or restore the file the manifest was written with."
            )
    return problems


def _load(report: Report, service: Service, artifacts: Path) -> bool:
    if service.load is None:
        report.add("load", "skip", "no load()")
        service.run_load(artifacts)
        return True
    started = time.perf_counter()
    try:
        service.run_load(artifacts)
    except ShipwayError as err:
        cause = err.__cause__
        if isinstance(cause, FileNotFoundError) and cause.filename:
            report.add(
                "load",
                "fail",
                f"load() failed: artifacts missing: {cause.filename} does not exist. Train the model "
                f"(python train.py), or make load() read what training writes.",
            )
        else:
            report.add("load", "fail", str(err))
        return False
    report.add("load", "ok", f"load() ran in {time.perf_counter() - started:.2f} s")
    return True


def _inputs(report: Report, module: Any, service: Service, pipeline: Pipeline) -> list[Any]:
    if not service.has_example:
        report.add(
            "example",
            "warn",
            "no `example`, so predict is not run: the output schema, JSON, batch and determinism are not checked. "
            "Define `example = MyInput(...)` in service.py; the server warms up with it too.",
        )
        return []
    raw = [service.example]
    extra = getattr(module, "examples", None)
    if extra is not None:
        if not isinstance(extra, (list, tuple)):
            report.add("example", "fail", f"`examples` must be a list of inputs, not {type(extra).__name__}.")
            return []
        raw += [x for x in extra if x is not service.example]
    parsed = []
    for i, item in enumerate(raw):
        try:
            parsed.append(pipeline.parse(item))
        except ShipwayError as err:
            where = "`example`" if i == 0 else f"`examples` item {i - 1}"
            report.add("example", "fail", f"{where} does not match the input schema: {err}")
            return []
    more = "" if extra is not None else "; define `examples`, a list of other inputs, to check batch forms on more"
    report.add("example", "ok", f"{len(parsed)} input{'s' if len(parsed) > 1 else ''} match the input schema{more}")
    return parsed


def _default(report: Report, service: Service, pipeline: Pipeline) -> None:
    if not service.has_default:
        report.add("default", "skip", "no `default`: fine in mode on; modes shadow and off need one")
        return
    try:
        pipeline.render(pipeline.output_schema.validate(service.default))
    except ShipwayError as err:
        report.add(
            "default",
            "fail",
            f"`default` does not match the output schema {pipeline.output_schema.name}, so `shipway serve` "
            f"refuses to start in modes shadow and off: {_reworded(err)}",
        )
        return
    report.add("default", "ok", f"matches the output schema {pipeline.output_schema.name}")


def _predict(report: Report, pipeline: Pipeline, inputs: list[Any]) -> list[Any] | None:
    outputs = []
    started = time.perf_counter()
    for i, item in enumerate(inputs):
        try:
            outputs.append(pipeline.run(item))
        except ShipwayError as err:
            check = "schemas" if "output schema" in str(err) else "predict"
            report.add(check, "fail", f"on {_which(i)}: {err}")
            return None
    each = (time.perf_counter() - started) / len(inputs) * 1000
    report.add("predict", "ok", f"outputs match the output schema {pipeline.output_schema.name} ({each:.1f} ms each)")
    return outputs


def _json(report: Report, pipeline: Pipeline, outputs: list[Any]) -> None:
    for i, output in enumerate(outputs):
        try:
            body = pipeline.render(output)
        except ShipwayError as err:
            report.add("json", "fail", f"the output for {_which(i)} does not serialise to JSON: {err}")
            return
        try:
            again = pipeline.output_schema.validate_json(body)
        except ShipwayError as err:
            report.add(
                "json",
                "fail",
                f"the output for {_which(i)} does not come back from JSON: {body[:200]!r} fails the output schema "
                f"({_reworded(err)}). NaN and infinity become null in JSON; return finite numbers.",
            )
            return
        difference = _difference(pipeline.jsonable(output), pipeline.jsonable(again), exact=True)
        if difference is None:
            difference = _difference(pipeline.jsonable(output), orjson.loads(body), exact=True)
        if difference:
            report.add(
                "json",
                "fail",
                f"the output for {_which(i)} changes through JSON: {difference}. Return plain numbers, strings, "
                f"lists and dicts (NaN and infinity become null).",
            )
            return
    report.add("json", "ok", "every output serialises to JSON and reads back unchanged")


def _batch(report: Report, service: Service, pipeline: Pipeline, inputs: list[Any], singles: list[Any]) -> None:
    if not (service.has_batch and service.predict is not None):
        only = "predict_batch" if service.has_batch else "predict"
        report.add("batch", "skip", f"only {only}: shipway derives the other form from it")
        return
    if len(inputs) == 1:
        inputs, singles = inputs * 2, singles * 2
    expected = [pipeline.jsonable(s) for s in singles]
    for order in ("given", "reversed"):
        batch = inputs if order == "given" else inputs[::-1]
        want = expected if order == "given" else expected[::-1]
        results = pipeline.run_batch(batch, errors="return")
        for i, (got, single) in enumerate(zip(results, want, strict=True)):
            j = i if order == "given" else len(batch) - 1 - i
            if isinstance(got, ShipwayError):
                report.add("batch", "fail", f"predict_batch failed on {_which(j)}, which predict answers: {got}")
                return
            difference = _difference(single, pipeline.jsonable(got))
            if difference:
                report.add(
                    "batch",
                    "fail",
                    f"predict_batch disagrees with predict on {_which(j)} (batch of {len(batch)}, {order} order): "
                    f"{difference}. The server uses predict_batch and /explain uses predict; make predict call "
                    f"predict_batch on a list of one, or fix whichever is wrong.",
                )
                return
    report.add("batch", "ok", f"predict_batch agrees with predict on {len(inputs)} inputs, in either order")


def _determinism(report: Report, module: Any, pipeline: Pipeline, inputs: list[Any], first: list[Any]) -> None:
    declared = getattr(module, "deterministic", True)
    if declared is False:
        report.add("determinism", "skip", "declared `deterministic = False`")
        return
    for i, item in enumerate(inputs):
        try:
            second = pipeline.run(item)
        except ShipwayError as err:
            report.add("determinism", "fail", f"predict failed on its second run of {_which(i)}: {err}")
            return
        difference = _difference(pipeline.jsonable(first[i]), pipeline.jsonable(second))
        if difference:
            report.add(
                "determinism",
                "fail",
                f"two runs of {_which(i)} gave different answers: {difference}. If the service samples on purpose, "
                f"declare `deterministic = False` in service.py; otherwise find the randomness (a missing seed, "
                f"a model left in training mode, state kept between calls).",
            )
            return
    report.add("determinism", "ok", "the same inputs got the same answers twice")


# -- helpers ------------------------------------------------------------------------------------


def _which(i: int) -> str:
    return "`example`" if i == 0 else f"`examples` item {i - 1}"


def _takes_argument(fn: Any) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)


def _reworded(err: ShipwayError) -> str:
    text = str(err)
    return text.split(": ", 1)[1] if text.startswith("predict returned a value") and ": " in text else text


def _difference(a: Any, b: Any, path: str = "", *, exact: bool = False) -> str | None:
    """Where two JSON-like values differ first, in words; None when they agree."""
    where = path or "the output"
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where} has keys {sorted(a)} against {sorted(b)}"
        for key in a:
            found = _difference(a[key], b[key], f"{path}.{key}" if path else str(key), exact=exact)
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{where} has {len(a)} items against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _difference(x, y, f"{path}.{i}" if path else str(i), exact=exact)
            if found:
                return found
        return None
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return None
        if a == b or (not exact and math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)):
            return None
        return f"{where} is {a!r} against {b!r}"
    if a == b and type(a) is type(b):
        return None
    return f"{where} is {_short(a)} against {_short(b)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
