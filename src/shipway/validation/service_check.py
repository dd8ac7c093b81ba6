"""The service checker (`shipway check`): what is wrong with a service, before it is deployed.

It loads the project as `shipway serve` would and runs the service in-process:

    settings     shipway.toml reads
    service      service.py imports and follows the protocol
    schemas      the type hints make input and output schemas; predict's output matches its own
    artifacts    the artifacts folder matches its manifest.json (every file, by sha256), as every load requires
    drift        a trained model has its drift reference (artifacts/profile.json) beside it
    load         load() runs
    example      `example` (and `examples`) match the input schema
    json         every output serialises to JSON and comes back unchanged
    batch        predict_batch gives what predict gives on the same inputs, in either order
    columns      predict_columns (batch scoring's answers as columns) gives what predict gives
    determinism  the same input gets the same answer twice, unless `deterministic = False`
    default      `default` (the answer in modes off and shadow) matches the output schema
    suites       every validation case's input (validation.suites) matches the input schema

Two module-level names are read by the checker only: `examples`, a list of inputs to compare the
batch and single forms on, and `deterministic`. Like scikit-learn's check_estimator, it is a test
of the protocol, not of the model's quality: that is what validation suites are for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from shipway.core.artifacts import verify_artifacts
from shipway.core.pipeline import Pipeline
from shipway.core.service import Service, import_service
from shipway.core.settings import Settings, load_settings
from shipway.errors import OutputError, ShipwayError
from shipway.project import Project
from shipway.rules.live import LiveRules
from shipway.validation.check_report import Finding, Report
from shipway.validation.difference import difference
from shipway.validation.suite import SUFFIXES, load_suites

__all__ = ["Finding", "Report", "check_project"]

_UNDUMPABLE = object()
PROFILE = "profile.json"  # the drift reference's file (shipway.monitoring.drift.profile.FILENAME)


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
    report.add(
        "settings", "ok", "shipway.toml reads" if (root / "shipway.toml").exists() else "defaults (no shipway.toml)"
    )

    loaded = _import(report, path, settings)
    if loaded is None:
        return report
    module, service = loaded
    if not _schemas(report, service):
        return report
    artifacts = settings.path("artifacts")
    missing = _artifacts(report, service, artifacts)
    if report.findings[-1].check == "artifacts" and report.findings[-1].status == "fail":
        report.add("load", "skip", "not run: the artifacts do not match their manifest, so nothing in them is loaded")
        return report
    loaded_ok = _load(report, service, artifacts)
    if missing is not None:
        # A missing folder is a problem when load() needed it, a curiosity when it did not.
        report.findings.insert(-1, Finding("artifacts", "fail" if not loaded_ok else "warn", missing))
    if not loaded_ok:
        return report
    try:
        # The project's pipeline, without rules: this checks the service's protocol, not its rules.
        pipeline = Project(service, settings).build(LiveRules(), artifacts)
    except ShipwayError as err:
        report.add("service", "fail", str(err))
        return report
    inputs = _inputs(report, module, service, pipeline)
    _default(report, service, pipeline)
    _suites(report, settings.path("validation.suites"), pipeline)
    if not inputs:
        return report
    singles = _predict(report, pipeline, inputs)
    if singles is None:
        return report
    if not _json(report, pipeline, singles):
        for name in ("batch", "columns", "determinism"):
            report.add(name, "skip", "not compared: the outputs do not serialise")
        return report
    _batch(report, service, pipeline, inputs, singles)
    _columns(report, service, pipeline, inputs, singles)
    _determinism(report, module, pipeline, inputs, singles)
    return report


# -- the checks ---------------------------------------------------------------------------------


def _import(report: Report, path: Path, settings: Settings) -> tuple[Any, Service] | None:
    root = settings.root
    name = settings["service"]
    target: str | Path = name
    if path.suffix == ".py" or name == "service.py":
        target = path  # a folder: core's own message when service.py is missing
    elif name.endswith(".py"):
        target = root / name
    try:
        module, _ = import_service(target)
        service = Service.from_module(module)
    except ShipwayError as err:
        report.add("service", "fail", str(err))
        return None
    parts = [
        n
        for n in ("predict", "predict_batch", "load", "before", "after", "example", "default", "redact")
        if hasattr(module, n)
    ]
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
            f"the {what} type is Any (or not annotated), so its schema accepts anything, and clients, rules "
            f"and this check cannot know what to expect. Annotate predict: `def predict(item: MyInput) -> MyOutput`.",
        )
    else:
        report.add("schemas", "ok", f"input {in_schema.name}, output {out_schema.name}")
    return True


def _artifacts(report: Report, service: Service, folder: Path) -> str | None:
    """Check the artifacts folder; a message when it is missing but load() takes it (its
    severity depends on whether load() then fails)."""
    if not folder.is_dir():
        if service.load is not None and _takes_argument(service.load):
            return (
                f"artifacts missing: {folder} does not exist, and load() is given it. Train the model "
                f"(python train.py) to create it, or set `artifacts` in shipway.toml."
            )
        report.add("artifacts", "skip", "no artifacts folder, and no load() that takes one")
        return None
    try:
        manifest = verify_artifacts(folder)  # what every load runs first: one check, one message
    except ShipwayError as err:
        report.add("artifacts", "fail", str(err))
        return None
    if manifest is None:
        report.add("artifacts", "skip", f"{folder} is empty")
        return None
    absent = [key for key in ("version", "dataset_version", "run_id") if not manifest.get(key)]
    listed = manifest["files"]
    summary = (
        f"{folder.name}/manifest.json: version {manifest.get('version')}, "
        f"{len(listed)} file{'s' if len(listed) != 1 else ''} as listed"
    )
    if absent:
        report.add(
            "artifacts",
            "warn",
            f"{summary}; it has no {', '.join(absent)}, so predictions cannot be traced to the data and run that made the model.",
        )
    else:
        report.add("artifacts", "ok", summary)
    _drift_reference(report, folder, listed)
    return None


def _drift_reference(report: Report, folder: Path, listed: dict[str, str]) -> None:
    """Drift detection compares traffic with the reference training writes; without it, it does nothing."""
    if PROFILE in listed:
        report.add("drift", "ok", f"{folder.name}/{PROFILE}: the drift reference")
        return
    report.add(
        "drift",
        "warn",
        f"no drift reference: {folder.name}/{PROFILE} is missing, so `shipway monitor drift`, prediction drift "
        f"and the dashboard's drift panels have nothing to compare traffic with. Write it where the model is "
        f"trained, before the manifest (Profile.build(inputs, answers).save(artifacts), see docs/drift.md), then "
        f"retrain: `python train.py` (`make train`). A project made by `shipway new` before template 1.5.0 gets "
        f"that step with `shipway update`.",
    )


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


def _suites(report: Report, path: Path, pipeline: Pipeline) -> None:
    """A schema changed under the suites fails here, not later in pytest or the validation gate."""
    if not path.exists() or (path.is_dir() and not any(f.suffix in SUFFIXES for f in path.iterdir())):
        return  # no suites: nothing to hold to the schema
    try:
        suites = load_suites([path])
    except ShipwayError as err:
        report.add("suites", "fail", str(err))
        return
    cases = 0
    for suite in suites:
        for case in suite.cases:
            cases += 1
            for item in case.inputs:
                try:
                    pipeline.parse(item)
                except ShipwayError as err:
                    where = f"{case.file}:{case.line}" if case.file else str(suite.path)
                    report.add(
                        "suites",
                        "fail",
                        f"validation case {suite.name}::{case.name} ({where}) sends an input that does not match the "
                        f"input schema: {err}. Edit its `input:` to the service's fields (service.py's `example` "
                        f"matches them).",
                    )
                    return
    report.add(
        "suites", "ok", f"the inputs of {cases} validation case{'s' if cases != 1 else ''} match the input schema"
    )


def _predict(report: Report, pipeline: Pipeline, inputs: list[Any]) -> list[Any] | None:
    outputs = []
    started = time.perf_counter()
    for i, item in enumerate(inputs):
        try:
            output = pipeline.run(item)
            # An instance passes its schema unchecked (pydantic does not revalidate instances, and
            # model_construct skips validation): check its fields the way a client will read them.
            try:
                dumped = pipeline.output_schema.adapter.dump_python(output)
            except Exception:  # what does not dump is for the JSON check to report
                dumped = _UNDUMPABLE
            if dumped is not _UNDUMPABLE:
                pipeline.output_schema.validate(dumped)
            outputs.append(output)
        except OutputError as err:
            report.add("schemas", "fail", f"on {_which(i)}, {err}")
            return None
        except ShipwayError as err:
            report.add("predict", "fail", f"on {_which(i)}: {err}")
            return None
    each = (time.perf_counter() - started) / len(inputs) * 1000
    report.add("predict", "ok", f"outputs match the output schema {pipeline.output_schema.name} ({each:.1f} ms each)")
    return outputs


def _json(report: Report, pipeline: Pipeline, outputs: list[Any]) -> bool:
    for i, output in enumerate(outputs):
        try:
            body = pipeline.render(output)
        except ShipwayError as err:
            report.add("json", "fail", f"the output for {_which(i)} does not serialise to JSON: {err}")
            return False
        try:
            again = pipeline.output_schema.validate_json(body)
        except ShipwayError as err:
            report.add(
                "json",
                "fail",
                f"the output for {_which(i)} does not come back from JSON: {body[:200]!r} fails the output schema "
                f"({_reworded(err)}). NaN and infinity become null in JSON; return finite numbers.",
            )
            return False
        found = difference(pipeline.jsonable(output), pipeline.jsonable(again), exact=True)
        if found is None:
            found = difference(pipeline.jsonable(output), orjson.loads(body), exact=True)
        if found:
            report.add(
                "json",
                "fail",
                f"the output for {_which(i)} changes through JSON: {found}. Return plain numbers, strings, "
                f"lists and dicts (NaN and infinity become null).",
            )
            return False
    report.add("json", "ok", "every output serialises to JSON and reads back unchanged")
    return True


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
            found = difference(single, pipeline.jsonable(got))
            if found:
                report.add(
                    "batch",
                    "fail",
                    f"predict_batch disagrees with predict on {_which(j)} (batch of {len(batch)}, {order} order): "
                    f"{found}. The server uses predict_batch and /explain uses predict; make predict call "
                    f"predict_batch on a list of one, or fix whichever is wrong.",
                )
                return
    report.add("batch", "ok", f"predict_batch agrees with predict on {len(inputs)} inputs, in either order")


def _columns(report: Report, service: Service, pipeline: Pipeline, inputs: list[Any], singles: list[Any]) -> None:
    if not service.has_columns:
        report.add("columns", "skip", "no predict_columns: batch scoring uses predict_batch")
        return
    kinds = [stage.kind for stage in pipeline.stages]
    if any(kind not in ("predict", "rules") for kind in kinds[kinds.index("predict") :]):
        report.add("columns", "warn", "an after stage follows predict, so batch scoring does not use predict_columns")
        return
    try:
        run = pipeline.run_columns([pipeline.parse(item) for item in inputs])
    except ShipwayError as err:
        report.add("columns", "fail", f"{err}")
        return
    answers = run.answers
    if answers is None:
        report.add(
            "columns",
            "fail",
            "predict_columns raised on the inputs that predict answers (batch scoring then runs predict_batch "
            "on such a batch); call it on them to see why.",
        )
        return
    for i, (got, single) in enumerate(zip(run.values, singles, strict=True)):
        if got is None:
            got = answers.rows([run.places.index(i)])[0]
        if isinstance(got, ShipwayError):
            report.add(
                "columns", "fail", f"predict_columns' answer for {_which(i)}, which predict answers, fails: {got}"
            )
            return
        found = difference(pipeline.jsonable(single), pipeline.jsonable(got))
        if found:
            report.add(
                "columns",
                "fail",
                f"predict_columns disagrees with predict on {_which(i)}: {found}. Batch scoring uses predict_columns "
                f"and serving predict_batch or predict; make them compute the answers the same way.",
            )
            return
    report.add("columns", "ok", f"predict_columns agrees with predict on {len(inputs)} inputs")


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
        found = difference(pipeline.jsonable(first[i]), pipeline.jsonable(second))
        if found:
            report.add(
                "determinism",
                "fail",
                f"two runs of {_which(i)} gave different answers: {found}. If the service samples on purpose, "
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
    """A schema error's problem alone, without its advice about predict."""
    text = str(err)
    if text.startswith("predict returned a value") and ": " in text:
        text = text.split(": ", 1)[1].removesuffix(" Make predict return what its return annotation says.")
    return text.rstrip(".")
