"""Timeline annotations (schema version 14): a note pinned to a moment of a service's life.

"Retrained on the March data", "traffic from the new app starts": one row each, with who
wrote it and when it applies. `shipway annotate` writes and lists them; anything that draws
the service's history over time can read them beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from shipway.store.base import Executor, Store

__all__ = ["Annotation", "AnnotationRecords", "annotation_tables"]

_TABLES = (
    "CREATE TABLE annotations (id {serial}, service TEXT NOT NULL, ts {real} NOT NULL, actor TEXT NOT NULL, "
    "text TEXT NOT NULL)",
    "CREATE INDEX annotations_service_ts ON annotations (service, ts)",
)


def annotation_tables(*, real: str, serial: str) -> tuple[str, ...]:
    """The version-14 statements for one dialect."""
    return tuple(t.format(real=real, serial=serial) for t in _TABLES)


@dataclass(frozen=True)
class Annotation:
    """A note on a service's timeline: `text` applies at `ts` (unix seconds), written by `actor`.
    `id` is set by the store."""

    service: str
    ts: float
    actor: str
    text: str
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnnotationRecords:
    """Annotation reads and writes, mixed into Store (both backends)."""

    def _annotation_store(self) -> Store:
        return cast("Store", self)

    def add_annotation(self, note: Annotation) -> Annotation:
        """Record `note`; the stored annotation (with its id) is returned."""

        def work(run_sql: Executor) -> int:
            rows = run_sql(
                "INSERT INTO annotations (service, ts, actor, text) VALUES (?, ?, ?, ?) RETURNING id",
                (note.service, note.ts, note.actor, note.text),
            )
            return int(rows[0][0])

        new_id = self._annotation_store()._transact(work)
        return Annotation(note.service, note.ts, note.actor, note.text, new_id)

    def annotations(
        self, service: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[Annotation]:
        """The annotations of `service` (all services if None) in [since, until), oldest first."""
        from shipway.store.base import where_clause

        store = self._annotation_store()
        where, params = where_clause(service, since, until, store.placeholder)
        rows = store._query(f"SELECT service, ts, actor, text, id FROM annotations{where} ORDER BY ts, id", params)
        return [Annotation(str(s), float(ts), str(a), str(t), int(i)) for s, ts, a, t, i in rows]
