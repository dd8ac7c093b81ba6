"""Targets: what suites run against, in this process or over HTTP.

Both answer the same three questions: the outputs for many inputs (fast:
one batch), the ids of the model and rules they run, and why a case failed
(a diagnosis from traces; in-process also from counterfactual reruns, and a
live service computes those itself when POST /explain is given the case's
expectation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from shipway.core.pipeline import Pipeline
from shipway.errors import TargetError
from shipway.expect.cases import Case, Failed, Invariance
from shipway.expect.diagnosis import Diagnosis, diagnose, final_output
from shipway.expect.explain import BATCH, outputs_of
from shipway.expect.fields import Fields
from shipway.rules.pipeline import load_pipeline  # re-exported: suites build their pipeline there

__all__ = ["HttpTarget", "InProcessTarget", "Target", "load_pipeline"]


class Target(Protocol):
    """Where suites run. `predict` returns JSON-like outputs, or `Failed` in an input's place."""

    description: str

    def ids(self) -> dict[str, Any]: ...

    def predict(self, items: Sequence[Any]) -> list[Any]: ...

    def diagnose(self, case: Case, fields: Fields) -> Diagnosis: ...

    def close(self) -> None: ...


class InProcessTarget:
    """A pipeline in this process: batches for the checks, traces and reruns for diagnoses."""

    def __init__(self, pipeline: Pipeline, description: str | None = None) -> None:
        self.pipeline = pipeline
        self.description = description or f"in-process {pipeline.ids.get('service') or 'service'}"

    def ids(self) -> dict[str, Any]:
        return dict(self.pipeline.ids)

    def predict(self, items: Sequence[Any]) -> list[Any]:
        return outputs_of(self.pipeline, items)

    def trace(self, item: Any) -> dict[str, Any]:
        return self.pipeline.trace(item).to_dict()

    def rerun(self, stage: str, items: list[Any]) -> list[Any]:
        return outputs_of(self.pipeline.without(stage), items)

    def diagnose(self, case: Case, fields: Fields) -> Diagnosis:
        traces = [self.trace(item) for item in case.inputs]
        return diagnose(case, fields, traces, self.rerun)

    def close(self) -> None:
        pass


class HttpTarget:
    """A live service: /predict/batch for the checks, /explain for diagnoses, GET / for its ids."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        import httpx  # only runs against live services need it

        self.url = url.rstrip("/")
        self.description = self.url
        self._httpx = httpx
        self.client = httpx.Client(base_url=self.url, timeout=timeout, headers={"content-type": "application/json"})

    def _post(self, path: str, body: Any) -> Any:
        try:
            return self.client.post(path, content=orjson.dumps(body))
        except self._httpx.HTTPError as err:
            raise TargetError(
                f"cannot reach the service at {self.url} ({type(err).__name__}: {err}); is it running? "
                f"Check the URL, or run the suites in-process with --target DIR."
            ) from err

    def ids(self) -> dict[str, Any]:
        try:
            response = self.client.get("/")
            ids = response.json().get("ids") if response.status_code == 200 else None
        except (self._httpx.HTTPError, ValueError):
            ids = None
        return dict(ids) if isinstance(ids, dict) else {}

    def predict(self, items: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(items), BATCH):
            chunk = list(items[start : start + BATCH])
            response = self._post("/predict/batch", {"items": chunk})
            if response.status_code == 200:
                out.extend(orjson.loads(response.content)["items"])
            else:
                # The batch fails as a whole on one bad input: find which, one by one.
                out.extend(self._one(item) for item in chunk)
        return out

    def _one(self, item: Any) -> Any:
        response = self._post("/predict", item)
        if response.status_code == 200:
            return orjson.loads(response.content)
        return Failed(f"HTTP {response.status_code}: {_error_message(response.content)}")

    def explain(self, item: Any, expect: dict[str, Any] | None = None, fields: Fields | None = None) -> dict[str, Any]:
        """POST /explain: the trace; with `expect`, the service's own verdict and diagnosis too."""
        body = item if expect is None else {"input": item, "expect": expect, "fields": (fields or Fields()).to_dict()}
        response = self._post("/explain", body)
        if response.status_code != 200:
            message = _error_message(response.content)
            return {"stages": [{"stage": "input", "kind": "input", "input": item, "output": None, "error": message}]}
        data: dict[str, Any] = orjson.loads(response.content)
        return data

    def diagnose(self, case: Case, fields: Fields) -> Diagnosis:
        if case.behaviour is None:
            answer = self.explain(case.input, case.spec(), fields)
            served = (answer.get("expect") or {}).get("diagnosis")
            if served:  # the service diagnosed it, counterfactuals included
                return Diagnosis.from_dict(served)
            return diagnose(case, fields, [answer])
        traces = [self.explain(item) for item in case.inputs]
        local = diagnose(case, fields, traces)
        if isinstance(case.behaviour, Invariance) and local.cause == "model":
            # The service reruns one input with stages left out, given an expectation: a variant
            # must get the case input's label, so ask it why the first one that did not, did not.
            label = fields.label_of(final_output(traces[0]))
            for i, (item, trace) in enumerate(zip(case.inputs[1:], traces[1:], strict=True), start=1):
                if fields.label_of(final_output(trace)) == label:
                    continue
                served = (self.explain(item, {"label": label}, fields).get("expect") or {}).get("diagnosis")
                if served and served.get("cause") == "before-stage":
                    found = Diagnosis.from_dict(served)
                    found.summary = f"variant {i}: {found.summary}"
                    found.details = local.details + found.details
                    return found
                break
        return local

    def close(self) -> None:
        self.client.close()


def _error_message(body: bytes) -> str:
    try:
        return str(orjson.loads(body)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body[:200].decode(errors="replace")
