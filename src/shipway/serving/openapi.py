"""The OpenAPI document, generated from the service's input and output types."""

from __future__ import annotations

import math
import time
from typing import Any

from shipway.common.times import EARLIEST
from shipway.core.pipeline import Pipeline

__all__ = ["openapi_document"]

REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message", "request_id"],
            "properties": {
                "type": {
                    "type": "string",
                    "description": "input_error, payload_error, overloaded, timeout, prediction_error, internal_error, not_found, method_not_allowed, not_ready",
                },
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}


DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What the rules decided (present when rules are live; see docs/rules.md).",
    "properties": {
        "queue": {"type": ["string", "null"]},
        "review": {"type": "boolean"},
        "review_reason": {"type": ["string", "null"]},
        "fallback": {"type": "boolean"},
        "set": {"type": "object"},
        "fired": {"type": "array", "items": {"type": "string"}},
        "rules_version": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
}


_VALUE: dict[str, Any] = {"type": ["string", "number", "boolean"]}


def _outcome(now: float) -> dict[str, Any]:
    """One feedback item; `ts` as the document generated at `now` can promise it is taken."""
    return {
        "type": "object",
        "description": "One outcome, joined to its prediction by request id (docs/feedback.md).",
        "required": ["request_id"],
        "properties": {
            "request_id": {"type": "string", "minLength": 1, "description": "The X-Request-ID of the prediction."},
            "label": {**_VALUE, "description": "The true label; or give `name` and `value`."},
            "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Another outcome's name."},
            "value": {**_VALUE, "description": "That outcome's value."},
            "ts": {
                "type": ["number", "null"],
                "minimum": EARLIEST,
                "maximum": math.floor(now),
                "description": "When it was observed, in unix seconds (an ISO 8601 string is taken too); "
                "from 2000 to a day after the service's clock. Absent or null: when it arrived.",
            },
        },
        "additionalProperties": False,
        "oneOf": [
            {"required": ["label"], "not": {"anyOf": [{"required": ["name"]}, {"required": ["value"]}]}},
            {"required": ["value"], "not": {"required": ["label"]}},
        ],
    }


FEEDBACK_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"$ref": "#/components/schemas/Outcome"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Outcome"}},
        {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Outcome"}}},
            "additionalProperties": False,
        },
    ]
}
FEEDBACK_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{key: {"type": "integer"} for key in ("accepted", "joined", "duplicates", "unknown", "late")},
        **{key: {"type": "array", "items": {"type": "string"}} for key in ("duplicate_ids", "unknown_ids", "late_ids")},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Body is not JSON",
        413: "Body too large",
        422: "Input fails the schema",
        401: "A token is set and the request did not carry it",
        500: "The prediction failed",
        503: "Overloaded or not ready (see Retry-After)",
        504: "The prediction timed out",
    }
    return {str(c): {"description": text[c], **_json({"$ref": "#/components/schemas/Error"})} for c in codes}


def openapi_document(pipeline: Pipeline, name: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def schema_of(hint_schema: Any) -> dict[str, Any]:
        schema = hint_schema.json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        title = schema.get("title")
        if schema.get("type") == "object" and title and title.isidentifier():
            components[title] = schema  # a named model: one definition, referenced
            return {"$ref": REF.format(model=title)}
        return schema

    inp, out = schema_of(pipeline.input_schema), schema_of(pipeline.output_schema)
    if any(stage.kind == "rules" for stage in pipeline.stages):
        # Answers carry the rules' decision whenever rules are live (they can be applied at any time).
        components["Decision"] = DECISION_SCHEMA
        decision = {"type": "object", "properties": {"decision": {"$ref": "#/components/schemas/Decision"}}}
        out = {"allOf": [out, decision]}
    rid = [
        {
            "name": "x-request-id",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "Your id for this request; echoed back, generated when absent.",
        }
    ]
    codes = (400, 413, 422, 500, 503, 504)
    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "summary": "Predict one item",
                "operationId": "predict",
                "parameters": rid,
                "requestBody": {"required": True, **_json(inp)},
                "responses": {"200": {"description": "The prediction", **_json(out)}, **_errors(*codes)},
            }
        },
        "/predict/batch": {
            "post": {
                "summary": "Predict a list of items in one request",
                "operationId": "predict_batch",
                "parameters": rid,
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": inp}},
                        }
                    ),
                },
                "responses": {
                    "200": {
                        "description": "One prediction per item, in order",
                        **_json({"type": "object", "properties": {"items": {"type": "array", "items": out}}}),
                    },
                    **_errors(*codes),
                },
            }
        },
        "/explain": {
            "post": {
                "summary": "Predict one item and return the trace of every stage",
                "operationId": "explain",
                "parameters": rid,
                "requestBody": {"required": True, **_json(inp)},
                "responses": {
                    "200": {"description": "The output and the trace", **_json({"type": "object"})},
                    **_errors(400, 413, 422, 500),
                },
            }
        },
        "/feedback": {
            "post": {
                "summary": "Record outcomes of earlier predictions (the true label, a click)",
                "operationId": "feedback",
                "parameters": rid,
                "security": [{}, {"bearer": []}],
                "requestBody": {"required": True, **_json({"$ref": "#/components/schemas/Feedback"})},
                "responses": {
                    "200": {"description": "How many were stored and joined", **_json(FEEDBACK_ANSWER)},
                    **_errors(400, 401, 413, 422, 500, 503),
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness: the process answers",
                "operationId": "health",
                "responses": {"200": {"description": "Alive"}},
            }
        },
        "/ready": {
            "get": {
                "summary": "Readiness: model loaded and warm-up passed",
                "operationId": "ready",
                "responses": {"200": {"description": "Ready"}, **_errors(503)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": version, "description": f"The {name} model service, served by shipway."},
        "paths": paths,
        "components": {
            "schemas": {**components, "Outcome": _outcome(time.time()), "Feedback": FEEDBACK_SCHEMA},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "SHIPWAY_FEEDBACK_TOKEN (or SHIPWAY_ADMIN_TOKEN), when the service sets one.",
                }
            },
        },
    }
