"""What PostgreSQL refuses and SQLite stores, kept reversibly so both stores hold the same.

PostgreSQL's `text` cannot hold U+0000, and `jsonb` refuses the escape `\\u0000` and
lone surrogates (`\\ud800`), values SQLite stores as they are. So on PostgreSQL:

- every string parameter is escaped on its way in and unescaped on its way out, with
  U+FFFF (a noncharacter, never sent by a well-behaved client) as the escape: U+0000
  becomes U+FFFF "0" and U+FFFF becomes U+FFFF "1". Strings with neither pass as they
  are; the escaped form compares equal to itself, so `WHERE request_id = ...` still works.
- a JSON document that jsonb would refuse (or that looks like the wrapper below) is
  stored as `{"shipway:json": "<the document's exact text>"}` and given back as that
  text. SQL over such a row sees the wrapper (`inputs->>'shipway:json'` is the text).

docs/store.md describes it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import orjson
import psycopg
from psycopg.adapt import Buffer, Dumper, Loader

from shipway.store.records import LogColumns

__all__ = ["COPY_TYPES", "WRAP_KEY", "copy_rows", "document_in", "register"]

ESCAPE = "\uffff"
WRAP_KEY = "shipway:json"
_WRAPPED_PREFIX = b'{"' + WRAP_KEY.encode() + b'": '
# Escapes jsonb refuses: U+0000 and any surrogate (a valid pair is wrapped too, harmlessly).
_REFUSED = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_ESCAPED = re.compile(ESCAPE + "([01])")


def escape(text: str) -> str:
    """`text` as PostgreSQL text can hold it (see the module docstring)."""
    if "\x00" in text or ESCAPE in text:
        return text.replace(ESCAPE, ESCAPE + "1").replace("\x00", ESCAPE + "0")
    return text


def unescape(text: str) -> str:
    """The inverse of `escape`."""
    if ESCAPE in text:
        return _ESCAPED.sub(lambda m: "\x00" if m[1] == "0" else ESCAPE, text)
    return text


def document_in(doc: str | None) -> str | None:
    """A JSON document as jsonb takes it: itself, or wrapped when jsonb would refuse it or
    could mistake it for a wrapper. Two substring searches for most documents."""
    if doc is None:
        return None
    if ("\\u" in doc and _REFUSED.search(doc)) or WRAP_KEY in doc:
        return orjson.dumps({WRAP_KEY: doc}).decode()
    return doc


#: The types psycopg dumps the prediction log's COPY rows as, in `COLUMNS` order. The rows are
#: encoded already (`copy_rows`), so this picks psycopg's own text dumper, not the escaping one;
#: documents go as text too, for the server to parse into jsonb (a jsonb dumper would quote them).
COPY_TYPES = ("text", "float8", "text", "text", "float8", *["text"] * 5, "int4", "text", "text")


def copy_rows(groups: Sequence[LogColumns]) -> list[tuple[Any, ...]]:
    """The COPY rows of a batch of log entries, in `COLUMNS` order, encoded as above. The
    checks run over whole columns, so a batch with nothing to encode costs a few C calls."""
    rows: list[tuple[Any, ...]] = []
    for g in groups:
        service, model, rules, dataset, run = (None if v is None else escape(v) for v in g.context)
        inputs, outputs, decisions, shadows = map(_documents, (g.inputs, g.outputs, g.decisions, g.shadows))
        rows += zip(
            _texts(g.request_ids),
            g.times,
            repeat(service),
            repeat(model),
            g.latencies,
            inputs,
            outputs,
            repeat(rules),
            repeat(dataset),
            repeat(run),
            g.statuses,
            decisions,
            shadows,
        )
    return rows


def _texts(column: Sequence[str]) -> Sequence[str]:
    joined = "".join(column)
    if "\x00" in joined or ESCAPE in joined:
        return [escape(t) for t in column]
    return column


def _documents(column: Sequence[str | None]) -> Sequence[str | None]:
    joined = "".join(filter(None, column))
    if "\\u" in joined or WRAP_KEY in joined:
        return [document_in(d) for d in column]
    return column


class _JsonBytes(Loader):
    """json/jsonb columns as the bytes of their text, never parsed (a wrapped document as its text)."""

    def load(self, data: Buffer) -> bytes:
        raw = bytes(data)
        if raw.startswith(_WRAPPED_PREFIX):
            wrapped = orjson.loads(raw)
            if len(wrapped) == 1:
                return str(wrapped[WRAP_KEY]).encode()
        return raw


class _Str(Dumper):
    """str parameters, escaped; sent as `unknown` like psycopg's own, so the server types them."""

    oid = 0

    def dump(self, obj: str) -> bytes:
        return escape(obj).encode()


class _Text(Loader):
    def load(self, data: Buffer) -> str:
        return unescape(bytes(data).decode())


def register(conn: psycopg.Connection[Any]) -> None:
    """Use these adapters on a connection of a PostgreSQL store."""
    conn.adapters.register_loader("jsonb", _JsonBytes)
    conn.adapters.register_loader("json", _JsonBytes)
    conn.adapters.register_dumper(str, _Str)
    for name in ("text", "varchar", "bpchar", "name"):
        conn.adapters.register_loader(name, _Text)
