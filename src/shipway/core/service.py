"""Service: what a scientist writes, and how it becomes a pipeline.

The protocol, all of it optional but `predict`:

    def load(artifacts: Path) -> Model          # once per process; result goes to predict
    def predict(model, item: In) -> Out         # or predict(item: In) -> Out without load
    def predict_batch(model, items: list[In]) -> list[Out]
    def predict_columns(model, items: list[In]) -> dict[str, column]   # batch scoring's answers
    before = [fn, ...]; after = [fn, ...]       # extra stages: fn(value) or fn(value, request)
    example = In(...)                           # warm-up input, checked before ready
    default = Out(...)                          # the answer in modes off and shadow
    def redact(record: dict) -> dict | None     # mask or drop fields before logging

Write it as module-level names in service.py, or build `shipway.Service(...)`.

`predict_columns` answers a batch as columns, one per output field, with no object per answer
(core/answer_columns.py says what a column may be); batch scoring uses it, and every other
context predict_batch or predict, which it must agree with (`shipway check` compares them).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shipway.core.artifacts import verify_artifacts
from shipway.core.pipeline import Pipeline
from shipway.core.schema import Schema
from shipway.core.settings import Settings, load_settings
from shipway.core.stage import Stage, stage_arity
from shipway.errors import LoadError, ServiceError

__all__ = ["Service", "import_file", "import_service", "load_project", "read_ids"]

_MISSING: Any = object()


class Service:
    """A model service definition. Cheap to build; `setup()` loads the model."""

    def __init__(
        self,
        predict: Callable[..., Any] | None = None,
        *,
        predict_batch: Callable[..., Any] | None = None,
        predict_columns: Callable[..., Any] | None = None,
        load: Callable[..., Any] | None = None,
        before: Sequence[Callable[..., Any] | Stage] = (),
        after: Sequence[Callable[..., Any] | Stage] = (),
        example: Any = _MISSING,
        default: Any = _MISSING,
        redact: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> None:
        self.predict = predict
        self.predict_batch = predict_batch
        self.predict_columns = predict_columns
        self.load = load
        self.before = list(before)
        self.after = list(after)
        self.example = example
        self.default = default
        self.redact = redact
        self.state: Any = None
        self.loaded = False

    @classmethod
    def from_module(cls, module: Any) -> Service:
        """The service a module defines: a `service` object, or its functions."""
        explicit = getattr(module, "service", None)
        if isinstance(explicit, Service):
            return explicit
        where = getattr(module, "__file__", None) or module.__name__
        predict = getattr(module, "predict", None)
        predict_batch = getattr(module, "predict_batch", None)
        if predict is None and predict_batch is None:
            also = (
                " predict_columns answers batch scoring only, beside them."
                if hasattr(module, "predict_columns")
                else ""
            )
            raise ServiceError(
                f"{where} defines no predict(). Add `def predict(item: MyInput) -> MyOutput:` "
                f"(and optionally predict_batch, predict_columns, load, before, after, example).{also}"
            )
        for attr in ("before", "after"):
            value = getattr(module, attr, ())
            if not isinstance(value, (list, tuple)):
                raise ServiceError(f"{where}: `{attr}` must be a list of stage functions, not {type(value).__name__}.")
        return cls(
            predict,
            predict_batch=predict_batch,
            predict_columns=getattr(module, "predict_columns", None),
            load=getattr(module, "load", None),
            before=getattr(module, "before", ()),
            after=getattr(module, "after", ()),
            example=getattr(module, "example", _MISSING),
            default=getattr(module, "default", _MISSING),
            redact=getattr(module, "redact", None),
        )

    @property
    def has_example(self) -> bool:
        return self.example is not _MISSING

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

    @property
    def has_batch(self) -> bool:
        return self.predict_batch is not None

    @property
    def has_columns(self) -> bool:
        return self.predict_columns is not None

    def run_load(self, artifacts: Path | None) -> None:
        """Verify the artifacts against their manifest, then run load() once; its result is handed
        to predict. Idempotent."""
        if self.loaded:
            return
        if artifacts is not None:
            verify_artifacts(artifacts)  # before load() can unpickle anything
        if self.load is not None:
            takes = _positional(self.load)
            try:
                self.state = self.load(artifacts) if takes else self.load()
            except Exception as err:
                hint = ""
                if isinstance(err, (FileNotFoundError, OSError)):
                    hint = (
                        f" The artifacts folder is {artifacts}; train the model to create it, "
                        f"or set `artifacts` in shipway.toml."
                    )
                raise LoadError(f"load() raised {type(err).__name__}: {err}.{hint}") from err
        self.loaded = True

    def setup(self, artifacts: Path | None = None, ids: dict[str, str | None] | None = None) -> Pipeline:
        """Load the model (if not yet) and build the pipeline.

        `ids` tag traces and logged predictions; by default they come from the
        artifacts (`read_ids`)."""
        self.run_load(artifacts)
        if ids is None:
            ids = read_ids(artifacts)
        predict_stage = self._predict_stage()
        stages = [
            *(Stage.from_function(f, "before") for f in self.before),
            predict_stage,
            *(Stage.from_function(f, "after") for f in self.after),
        ]
        seen: set[str] = set()
        for stage in stages:
            if stage.name in seen or stage.name in ("input", "output"):
                raise ServiceError(
                    f"two stages are named {stage.name!r}; stage names must be unique and not "
                    f"'input' or 'output'. Rename one of the functions."
                )
            seen.add(stage.name)
        return Pipeline(stages, *self.schemas(), ids)

    def schemas(self) -> tuple[Schema, Schema]:
        """The pipeline's input and output schemas, from the type hints alone (no load())."""
        in_hint: Any = Any
        out_hint: Any = Any
        if self.predict is not None:
            hints, params = _hints(self.predict), _param_names(self.predict)
            in_hint, out_hint = (hints.get(params[-1], Any) if params else Any), hints.get("return", Any)
        elif self.predict_batch is not None:
            hints, params = _hints(self.predict_batch), _param_names(self.predict_batch)
            in_hint = _item_hint(hints.get(params[-1], Any)) if params else Any
            out_hint = _item_hint(hints.get("return", Any))
        if self.before:
            in_hint = _first_param_hint(self.before[0], in_hint)
        if self.after:
            out_hint = _return_hint(self.after[-1], out_hint)
        return Schema(in_hint, "input"), Schema(out_hint, "output")

    def _predict_stage(self) -> Stage:
        one = self._bind(self.predict, "predict") if self.predict is not None else None
        many = self._bind(self.predict_batch, "predict_batch") if self.predict_batch is not None else None
        columns = self._bind(self.predict_columns, "predict_columns") if self.predict_columns is not None else None
        return Stage("predict", "predict", one=one, many=many, columns=columns)

    def _bind(self, fn: Callable[..., Any], what: str) -> Any:
        arity = stage_arity(fn, what)
        if arity == 2 and self.load is None:
            raise ServiceError(
                f"{what}() takes two parameters, so it expects the model from load(), but the "
                f"service has no load(). Define `def load(artifacts): ...` or drop the first parameter."
            )
        if arity == 2:
            state = self.state
            return lambda items, _r, fn=fn, s=state: fn(s, items)
        return lambda items, _r, fn=fn: fn(items)


def import_service(target: str | Path) -> tuple[Any, Path]:
    """Import a service from a folder, a .py file or a dotted module path.

    Returns the module and the project folder (where shipway.toml lives).
    """
    path = Path(target)
    if path.is_dir():
        file = path / "service.py"
        if not file.exists():
            raise ServiceError(
                f"{path} has no service.py. Create one with a predict() function, "
                f"or pass the file or module that defines it."
            )
        return import_file(file), path.resolve()
    if path.suffix == ".py":
        if not path.exists():
            raise ServiceError(f"service file {path} does not exist; check the path.")
        return import_file(path), path.resolve().parent
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` would: modules in this folder import
    try:
        module = importlib.import_module(str(target))
    except ImportError as err:
        raise ServiceError(
            f"cannot import service {target!r}: {err}. Pass a folder with service.py, "
            f"a .py file, or a module path importable from this folder or PYTHONPATH, like mypkg.service."
        ) from err
    location: str | None = getattr(module, "__file__", None)
    return module, (Path(location).resolve().parent if location else Path.cwd())


def load_project(target: str | Path, overrides: Mapping[str, Any] | None = None) -> tuple[Service, Settings]:
    """A project's settings and service: settings first, since they may say where service.py is.

    `target` is a folder, a service.py or a dotted module path; `overrides` are settings by
    dotted key (CLI flags)."""
    path = Path(target)
    root = path if path.is_dir() else (path.parent if path.suffix == ".py" else Path.cwd())
    settings = load_settings(root, overrides)
    module_target: str | Path = target
    if path.is_dir() and settings["service"] != "service.py":
        module_target = path / settings["service"] if settings["service"].endswith(".py") else settings["service"]
    module, _ = import_service(module_target)
    return Service.from_module(module), settings


def read_ids(artifacts: Path | None, version: str | None = None) -> dict[str, str | None]:
    """The ids that tie predictions to the model: from artifacts/manifest.json,
    else the setting, else a content hash of the artifacts."""
    ids: dict[str, str | None] = {"model_version": version or None, "dataset_version": None, "run_id": None}
    manifest = artifacts / "manifest.json" if artifacts else None
    if manifest is not None and manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
        except ValueError as err:
            raise LoadError(f"{manifest} is not valid JSON ({err}); fix or delete it.") from err
        for key in ("dataset_version", "run_id"):
            if data.get(key) is not None:
                ids[key] = str(data[key])
        ids["model_version"] = ids["model_version"] or (str(data["version"]) if data.get("version") else None)
    if not ids["model_version"]:
        ids["model_version"] = _hash_folder(artifacts) if artifacts and artifacts.is_dir() else "unversioned"
    return ids


def _hash_folder(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode())
        with file.open("rb") as fh:
            for chunk in iter(functools.partial(fh.read, 1 << 20), b""):
                digest.update(chunk)
    return "sha256-" + digest.hexdigest()[:12]


def import_file(file: Path) -> Any:
    """A service's file as a module, under a name of its path's own, its folder on sys.path so it
    can import its neighbours; once per process. ServiceError if it cannot be imported."""
    name = f"shipway_user_service_{hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so service.py can import its neighbours
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ServiceError(f"cannot import {file}; is it a Python file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise ServiceError(f"importing {file} raised {type(err).__name__}: {err}") from err
    return module


def _positional(fn: Callable[..., Any]) -> int:
    return len(_param_names(fn))


def _param_names(fn: Callable[..., Any]) -> list[str]:
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as err:
        raise ServiceError(
            f"cannot resolve the type hints of {getattr(fn, '__name__', fn)}: {err}. "
            f"Import every type its annotations name."
        ) from err


def _first_param_hint(fn: Any, default: Any) -> Any:
    if isinstance(fn, Stage):
        return default
    params = _param_names(fn)
    return _hints(fn).get(params[0], default) if params else default


def _return_hint(fn: Any, default: Any) -> Any:
    if isinstance(fn, Stage):
        return default
    return _hints(fn).get("return", default)


def _item_hint(hint: Any) -> Any:
    """The item type of `list[X]` (or `Sequence[X]`); Any otherwise."""
    args = typing.get_args(hint)
    return args[0] if args else Any
