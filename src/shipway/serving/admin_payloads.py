"""The bodies of the admin routes, checked by pydantic models; errors are PayloadError (400).

    POST /admin/rules            RulesApply     {"source": "<rules YAML>", "mode": "on", "canary": 0.1, ...}
    POST /admin/model            ModelDeploy    {"artifacts": "<folder train.py wrote>"}
    POST /admin/rules/rollback   RulesRollback  {"version": "<a version>"} or {}

Every body may name an `actor`; keys a model does not know are ignored.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from shipway.errors import PayloadError

__all__ = ["ModelDeploy", "RulesApply", "RulesRollback", "payload"]


class _Payload(BaseModel):
    """An admin body: a JSON object whose known keys are checked; other keys are ignored."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")
    usage: ClassVar[str] = ""

    actor: str | None = None


class RulesApply(_Payload):
    usage = 'POST /admin/rules takes {"source": "<the rules YAML>", "mode": "on"}'

    source: str = Field(pattern=r"\S")
    mode: str | None = None
    canary: StrictInt | StrictFloat | None = None
    canary_key: str | None = None
    filename: str | None = None


class ModelDeploy(_Payload):
    usage = 'POST /admin/model takes {"artifacts": "<folder train.py wrote>"}'

    artifacts: str = Field(min_length=1)


class RulesRollback(_Payload):
    usage = 'POST /admin/rules/rollback takes {"version": "<a version from GET /admin/rules>"} or {}'

    version: str | None = None


_P = TypeVar("_P", bound=_Payload)


def payload(model: type[_P], body: bytes) -> _P:
    """The body checked by `model`; PayloadError (400) naming the first bad key and the usage."""
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as err:
        raise PayloadError(f"the body is not valid JSON ({err}); send a JSON object") from None
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        if first["type"] == "missing" or (key in ("source", "artifacts") and isinstance(data.get(key), str)):
            raise PayloadError(model.usage) from None
        value = data.get(key)
        want = "a number between 0 and 1" if key == "canary" else "a string"
        raise PayloadError(f"{key!r} must be {want}, not {type(value).__name__} {value!r}") from None
