"""Admin endpoints: applying and rolling back rules on a running service.

Every admin request needs `Authorization: Bearer <token>` matching the
SHIPWAY_ADMIN_TOKEN the service started with; without that variable the
admin endpoints are off (403), so no deployment exposes them by accident.
Wrong tokens are limited per client address (429): shipway/web/tokens.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any

import orjson

from shipway.errors import GateFailed, LoadError, PayloadError, RegistryError, RulesError, StoreError, StoreUnavailable
from shipway.rules.lifecycle import UnknownVersion
from shipway.serving.admin_payloads import ModelDeploy, RulesApply, RulesRollback, payload
from shipway.serving.guard import TOKEN_ENV, guard
from shipway.serving.models import ModelManager
from shipway.serving.responses import error_body
from shipway.serving.runtime import Runtime
from shipway.store import RulesEvent
from shipway.web.http import Receive, Send, read_body, send_response

__all__ = ["TOKEN_ENV", "admin", "event_json"]


async def admin(
    rt: Runtime,
    models: ModelManager,
    receive: Receive,
    send: Send,
    request_id: str,
    authorization: bytes | None,
    client: str,
    action: str,
) -> None:
    token = os.environ.get(TOKEN_ENV)
    if not await guard(rt, send, request_id, client, authorization, token, "this admin operation", TOKEN_ENV):
        return
    rules = rt.rules
    if rules is None:
        return await send_response(
            send, 503, error_body("not_ready", "the service is still starting", request_id), request_id
        )
    try:
        if action == "history":
            history = await asyncio.to_thread(rules.history, 200)
            active = rules.live.active
            body: dict[str, Any] = {
                "live": active.versions[0],
                "candidate": active.versions[1],
                "candidate_mode": active.candidate_mode if active.candidate else None,
                "history": [event_json(e) for e in history],
            }
            return await send_response(send, 200, orjson.dumps(body), request_id)
        if action == "model_history":
            deployed = await asyncio.to_thread(models.history)
            body = {"model": dict(rt.ids), "history": [{**event_json(e), "artifacts": e.source} for e in deployed]}
            return await send_response(send, 200, orjson.dumps(body), request_id)
        body_bytes = await read_body(receive, rt.max_body)
        if action == "apply":
            apply = payload(RulesApply, body_bytes)
            event, ruleset = await asyncio.to_thread(
                rules.apply,
                apply.source,
                mode=apply.mode or "on",
                canary=None if apply.canary is None else float(apply.canary),
                canary_key=apply.canary_key,
                actor=apply.actor or _caller(client),
                filename=apply.filename,
            )
            body = {"applied": event_json(event), "warnings": [str(w) for w in ruleset.warnings]}
        elif action == "deploy":
            model = payload(ModelDeploy, body_bytes)
            executor = rt.batcher.executor if rt.batcher is not None else None

            def on_predict_thread(fn: Any, *args: Any) -> Any:
                # The gates run the candidate beside the live model, on the one predict thread.
                return executor.submit(fn, *args).result() if executor is not None else fn(*args)

            event = await asyncio.to_thread(
                models.deploy, model.artifacts, model.actor or _caller(client), on_predict_thread
            )
            body = {"applied": {**event_json(event), "artifacts": event.source}, "warnings": []}
        else:
            back = payload(RulesRollback, body_bytes)
            event = await asyncio.to_thread(rules.rollback, back.version, back.actor or _caller(client))
            body = {"applied": event_json(event), "warnings": []}
    except RulesError as err:
        details = [
            dataclasses.asdict(d) for d in err.diagnostics if dataclasses.is_dataclass(d) and not isinstance(d, type)
        ] or None
        return await rt.refuse(
            send, 422, "rules_error", error_body("rules_error", str(err), request_id, details), request_id
        )
    except GateFailed as err:
        failures = [r for r in err.report.get("results", []) if r.get("status") in ("failed", "error")]
        failures += err.report.get("differences", [])  # the parity gate's first differing examples
        refusal = error_body("gate_failed", str(err), request_id, failures[:20] or None)
        return await rt.refuse(send, 422, "gate_failed", refusal, request_id)
    except LoadError as err:
        refusal = error_body("load_error", str(err), request_id)
        return await rt.refuse(send, 422, "load_error", refusal, request_id)
    except (UnknownVersion, RegistryError) as err:
        return await rt.refuse(send, 404, "not_found", error_body("not_found", str(err), request_id), request_id)
    except StoreUnavailable as err:
        return await rt.refuse(
            send, 503, "store_unavailable", error_body("store_unavailable", str(err), request_id), request_id
        )
    except (PayloadError, StoreError) as err:
        return await rt.fail(send, err, request_id, "admin", 0.0)
    await send_response(send, 200, orjson.dumps(body), request_id)


def _caller(client: str) -> str:
    """Who the history names when a body gives no `actor`: the admin token's holder, by address."""
    return f"admin token from {client or 'an unknown address'}"


def event_json(event: RulesEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "version": event.version,
        "action": event.action,
        "ts": event.ts,
        "actor": event.actor,
        "options": event.options,
    }
