"""The model candidate's table (schema version 10): which registered version runs beside a
service's live model, in which mode, and every change of it with who and why.

One append-only table, `model_candidates`: a row per change, numbered per service by
`generation` (1, 2, ...). The newest row of a service is its state; workers and replicas
poll it as they poll the rules history. `(service, generation)` is unique, so two writers
racing from the same state cannot both win: the second gets `CandidateConflict`.
A promotion also records the version in the service's model history (so a restart serves
it) and moves the `live` alias, in the same transaction. The typed API over this table is
`shipway.registry.candidates` (docs/registry.md).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from shipway.errors import RegistryError, StoreError

if TYPE_CHECKING:
    from shipway.store.base import Executor, Store

__all__ = ["CANDIDATE_MODES", "CandidateConflict", "CandidateRecords", "CandidateState", "candidate_tables"]

CandidateMode = Literal["shadow", "canary", "promoted", "rolled_back"]
CANDIDATE_MODES: tuple[str, ...] = ("shadow", "canary", "promoted", "rolled_back")

_TABLES = (
    """CREATE TABLE model_candidates (
        id {serial}, service TEXT NOT NULL, generation INTEGER NOT NULL, version TEXT NOT NULL,
        mode TEXT NOT NULL, share {real} NOT NULL, key TEXT, reason TEXT NOT NULL, actor TEXT NOT NULL,
        changed_at {real} NOT NULL
    )""",
    "CREATE UNIQUE INDEX model_candidates_generation ON model_candidates (service, generation)",
)
_COLUMNS = "version, mode, share, key, reason, actor, changed_at, generation"


def candidate_tables(*, real: str, serial: str) -> tuple[str, ...]:
    """The version-10 statements for one dialect."""
    return tuple(t.format(real=real, serial=serial) for t in _TABLES)


class CandidateConflict(RegistryError):
    """The candidate changed since the state the writer read (another writer won the race)."""


@dataclass(frozen=True)
class CandidateState:
    """A service's model candidate: `version` runs beside the live model in `mode`.

    `share` is the sampled share of traffic the candidate also predicts (shadow) or the share
    it answers (canary), in [0, 1]; 0 once promoted or rolled back. `key` is the request
    field that keeps a caller on one side of a canary (`input.customer_id`); None splits by
    request id. `generation` counts the service's changes (the store sets it).
    """

    version: str
    mode: CandidateMode
    share: float = 1.0
    key: str | None = None
    reason: str = ""
    actor: str = ""
    changed_at: float = 0.0
    generation: int = 0

    @property
    def active(self) -> bool:
        """Whether the candidate runs beside the live model (shadow or canary)."""
        return self.mode in ("shadow", "canary")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _state(row: Any) -> CandidateState:
    version, mode, share, key, reason, actor, changed_at, generation = row
    return CandidateState(
        str(version),
        cast(CandidateMode, str(mode)),
        float(share),
        key,
        str(reason),
        str(actor),
        float(changed_at),
        int(generation),
    )


class CandidateRecords:
    """Candidate reads and writes, mixed into Store (both backends)."""

    def _candidate_store(self) -> Store:
        return cast("Store", self)

    def candidate_events(self, service: str, limit: int | None = None) -> list[CandidateState]:
        """The service's candidate changes, newest first."""
        store = self._candidate_store()
        sql = f"SELECT {_COLUMNS} FROM model_candidates WHERE service = {store.placeholder} ORDER BY generation DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_state(r) for r in store._query(sql, [service])]

    def write_candidate(
        self,
        service: str,
        state: CandidateState,
        *,
        expected_generation: int | None = None,
        live_alias: str | None = None,
    ) -> CandidateState:
        """Append `state` as the service's next generation, in one transaction. With
        `expected_generation`, refuse (CandidateConflict) unless the newest row has it. A
        promotion also records a model-history deployment of the version (its source is the
        version's name) and, with `live_alias`, points that alias at it."""
        now = time.time()
        written: list[CandidateState] = []

        def work(run_sql: Executor) -> None:
            rows = run_sql("SELECT MAX(generation) FROM model_candidates WHERE service = ?", (service,))
            current = int(rows[0][0]) if rows and rows[0][0] is not None else 0
            if expected_generation is not None and current != expected_generation:
                raise CandidateConflict(
                    f"the candidate of {service!r} is at generation {current}, not {expected_generation}: "
                    "someone changed it meanwhile; read the current state and decide again."
                )
            row = replace(state, changed_at=now, generation=current + 1)
            run_sql(
                "INSERT INTO model_candidates (service, generation, version, mode, share, key, reason, actor, "
                "changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (service, row.generation, row.version, row.mode, row.share, row.key, row.reason, row.actor, now),
            )
            if row.mode == "promoted":
                run_sql(
                    "INSERT INTO model_history (service, version, action, ts, actor, options, source) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (service, row.version, "deploy", now, row.actor, "{}", row.version),
                )
                if live_alias is not None:
                    found = run_sql("SELECT version FROM model_aliases WHERE alias = ?", (live_alias,))
                    run_sql(
                        "INSERT INTO model_aliases (alias, version, moved, moved_by) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (alias) DO UPDATE SET version = excluded.version, moved = excluded.moved, "
                        "moved_by = excluded.moved_by",
                        (live_alias, row.version, now, row.actor),
                    )
                    run_sql(
                        "INSERT INTO model_alias_history (alias, version, previous, ts, who, note) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (live_alias, row.version, found[0][0] if found else None, now, row.actor, row.reason),
                    )
            written.append(row)

        try:
            self._candidate_store()._transact(work)
        except StoreError as err:
            # Two writers from the same generation: the unique index refused the second.
            if "model_candidates" in str(err) or "unique" in str(err).lower():
                raise CandidateConflict(
                    f"the candidate of {service!r} was changed by another writer at the same moment; "
                    "read the current state and decide again."
                ) from err
            raise
        return written[0]
