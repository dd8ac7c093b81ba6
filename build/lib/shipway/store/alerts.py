"""Alert state: one row per (service, alert), changed atomically, with a log of changes.

`transition` is what makes alerts deduplicated across workers and machines:
however many evaluators see a problem at once, exactly one of them changes the
state (and so sends the message); an ongoing problem changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from shipway.store.records import AlertEvent

if TYPE_CHECKING:
    from shipway.store.base import Executor, Store

__all__ = ["alert_events", "alert_states", "alert_transition"]

_FIRE = (
    "INSERT INTO alert_state (service, key, firing, since) VALUES (?, ?, 1, ?) "
    "ON CONFLICT (service, key) DO UPDATE SET firing = 1, since = excluded.since "
    "WHERE alert_state.firing = 0 RETURNING 1"
)
_RECOVER = "UPDATE alert_state SET firing = 0, since = ? WHERE service = ? AND key = ? AND firing = 1 RETURNING 1"
_EVENT = "INSERT INTO alert_events (service, key, firing, ts, detail) VALUES (?, ?, ?, ?, ?)"


def alert_transition(store: Store, service: str, key: str, firing: bool, ts: float, detail: dict[str, object]) -> bool:
    """Move the alert to `firing` (or recovered); True only for the caller that changed it."""

    def work(run: Executor) -> bool:
        if firing:
            changed = run(_FIRE, (service, key, ts))
        else:
            changed = run(_RECOVER, (ts, service, key))
        if changed:
            run(_EVENT, (service, key, int(firing), ts, orjson.dumps(detail, default=str).decode()))
        return bool(changed)

    return store._transact(work)


def alert_events(store: Store, service: str, since: float | None = None, limit: int = 100) -> list[AlertEvent]:
    """The service's alert changes, newest first."""
    ph = store.placeholder
    sql = f"SELECT id, service, key, firing, ts, detail FROM alert_events WHERE service = {ph}"
    params: list[object] = [service]
    if since is not None:
        sql += f" AND ts >= {ph}"
        params.append(since)
    sql += f" ORDER BY ts DESC, id DESC LIMIT {int(limit)}"
    return [
        AlertEvent(int(i), s, k, bool(f), float(t), orjson.loads(d)) for i, s, k, f, t, d in store._query(sql, params)
    ]


def alert_states(store: Store, service: str) -> dict[str, bool]:
    """Which of the service's alerts are firing now."""
    rows = store._query(f"SELECT key, firing FROM alert_state WHERE service = {store.placeholder}", [service])
    return {k: bool(f) for k, f in rows}
