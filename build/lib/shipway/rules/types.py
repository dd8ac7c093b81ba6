"""Types of rule values, read from the service's JSON Schemas.

A `Type` is the set of JSON kinds a value may have ("string", "number",
"boolean", "null", "array", "object"), or any kind when nothing is known.
Schemas are what pydantic's `TypeAdapter(...).json_schema()` returns; `$ref`
into `$defs` (or `definitions`), `anyOf`/`oneOf`/`allOf`, `enum` and `const`
are understood, anything else is read as "any".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ANY", "KINDS", "LABEL_NAMES", "SchemaTypes", "Type", "kind_of", "type_of_value"]

KINDS = frozenset({"string", "number", "boolean", "null", "array", "object"})
# Output fields with these names hold the model's labels (checked against `labels`).
LABEL_NAMES = frozenset(
    {"label", "labels", "intent", "intents", "class", "category", "categories", "topic", "topics", "prediction"}
)
_JSON_TYPES = {"integer": "number", "number": "number", "string": "string", "boolean": "boolean", "null": "null"}
_JSON_TYPES |= {"array": "array", "object": "object"}


@dataclass(frozen=True)
class Type:
    """What a value may be. `kinds` None means anything."""

    kinds: frozenset[str] | None = None
    enum: frozenset[Any] | None = None  # the only values it can take, when known
    label: bool = False  # holds one of the model's labels
    schemas: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)  # to look fields up
    owner: SchemaTypes | None = field(default=None, compare=False)

    @property
    def known(self) -> frozenset[str] | None:
        """The kinds other than null (a null is a missing value), or None for any."""
        if self.kinds is None:
            return None
        return self.kinds - {"null"}

    def can_be(self, *kinds: str) -> bool:
        known = self.known
        return known is None or not known or bool(known & set(kinds))

    def only(self, *kinds: str) -> bool:
        known = self.known
        return known is not None and bool(known) and known <= set(kinds)

    def describe(self) -> str:
        known = self.known
        if known is None:
            return "any value"
        if not known:
            return "null"
        words = {
            "string": "text",
            "number": "a number",
            "boolean": "true/false",
            "array": "a list",
            "object": "an object",
        }
        return " or ".join(words[k] for k in sorted(known))


ANY = Type()


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object"


def type_of_value(value: Any) -> Type:
    return Type(frozenset({kind_of(value)}))


def union(types: Collection[Type]) -> Type:
    if len(types) == 1:
        return next(iter(types))
    if not types or any(t.kinds is None for t in types):
        return ANY
    kinds = frozenset().union(*(t.kinds or () for t in types))
    schemas = tuple(s for t in types for s in t.schemas)
    owner = next((t.owner for t in types if t.owner is not None), None)
    label = all(t.label for t in types if t.known)
    enums = [t.enum for t in types if t.known]
    enum: frozenset[Any] | None = None
    if enums and all(e is not None for e in enums):
        enum = frozenset().union(*(e for e in enums if e is not None))
    return Type(kinds, enum, label, schemas, owner)


class SchemaTypes:
    """One JSON Schema, with the lookups the checker needs."""

    def __init__(self, schema: Mapping[str, Any] | None, *, labels: Collection[str] | None = None) -> None:
        self.schema = schema or {}
        self.defs: Mapping[str, Any] = {**self.schema.get("definitions", {}), **self.schema.get("$defs", {})}
        self.labels = frozenset(labels) if labels is not None else None
        self.label_names = LABEL_NAMES | self._sole_string_field()

    def root(self) -> Type:
        return self.type_of(self.schema, label=False) if self.schema else ANY

    def resolve(self, schema: Mapping[str, Any], seen: int = 0) -> list[Mapping[str, Any]]:
        """The alternatives a schema stands for, with $ref and allOf followed."""
        if seen > 32:
            return [{}]
        if "$ref" in schema:
            ref = str(schema["$ref"])
            name = ref.rsplit("/", 1)[-1]
            target = self.defs.get(name, {}) if ref.startswith("#/") and ref != "#" else self.schema
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.resolve({**target, **rest}, seen + 1)
        if "allOf" in schema and len(schema["allOf"]) == 1:
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.resolve({**schema["allOf"][0], **rest}, seen + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                out: list[Mapping[str, Any]] = []
                for option in schema[key]:
                    out.extend(self.resolve(option, seen + 1))
                return out
        return [schema]

    def type_of(self, schema: Mapping[str, Any], *, label: bool) -> Type:
        options = self.resolve(schema)
        kinds: set[str] = set()
        enum: set[Any] | None = set()
        for option in options:
            found = self._kinds(option)
            if found is None:
                return Type(None, None, label, tuple(options), self)
            kinds |= found
            values = option.get("enum", [option["const"]] if "const" in option else None)
            if values is None:
                if found - {"null"}:
                    enum = None
            elif enum is not None:
                enum |= {v for v in values if v is not None}
        is_label = label and self.labels is not None and bool(kinds & {"string", "array"})
        return Type(frozenset(kinds), frozenset(enum) if enum else None, is_label, tuple(options), self)

    @staticmethod
    def _kinds(schema: Mapping[str, Any]) -> set[str] | None:
        declared = schema.get("type")
        if declared is None:
            if "enum" in schema or "const" in schema:
                values = schema.get("enum", [schema.get("const")])
                return {kind_of(v) for v in values}
            if "properties" in schema:
                return {"object"}
            if "items" in schema or "prefixItems" in schema:
                return {"array"}
            return None
        names = declared if isinstance(declared, list) else [declared]
        return {_JSON_TYPES.get(str(n), "object") for n in names}

    def fields(self, t: Type) -> list[str]:
        names: list[str] = []
        for schema in t.schemas:
            names.extend(n for n in schema.get("properties", {}) if n not in names)
        return names

    def attribute(self, t: Type, name: str) -> Type | None:
        """The type of `t.name`; None when `t` is an object known to have no such field."""
        if t.kinds is None or not t.schemas:
            return ANY
        found: list[Type] = []
        open_object = False
        for schema in t.schemas:
            properties = schema.get("properties")
            extra = schema.get("additionalProperties", properties is None)
            if properties is not None and name in properties:
                found.append(self.type_of(properties[name], label=name in self.label_names))
            elif isinstance(extra, Mapping):
                found.append(self.type_of(extra, label=False))
            elif extra is True and "object" in (self._kinds(schema) or {"object"}):
                open_object = True
        if open_object:
            found.append(ANY)
        if not found:
            return None if "object" in (t.kinds or ()) else ANY
        return union(found)

    def item(self, t: Type, index: int | None) -> Type:
        """The type of `t[index]` (index None: computed at run time)."""
        if t.kinds is None or not t.schemas:
            return ANY
        found: list[Type] = []
        for schema in t.schemas:
            prefix = schema.get("prefixItems")
            if prefix and isinstance(index, int) and -len(prefix) <= index < len(prefix):
                found.append(self.type_of(prefix[index], label=t.label))
            elif isinstance(schema.get("items"), Mapping):
                found.append(self.type_of(schema["items"], label=t.label))
            elif "string" in (self._kinds(schema) or ()):
                found.append(Type(frozenset({"string"})))
            elif isinstance(schema.get("additionalProperties"), Mapping):
                found.append(self.type_of(schema["additionalProperties"], label=False))
        return union(found) if found else ANY

    def _sole_string_field(self) -> frozenset[str]:
        # A model output with one text field (`{"answer": ..., "score": ...}`): that field is the label.
        options = self.resolve(self.schema) if self.schema else []
        strings = [
            name
            for option in options
            for name, prop in option.get("properties", {}).items()
            if "string" in (self.type_of(prop, label=False).kinds or ())
        ]
        return frozenset(strings) if len(strings) == 1 else frozenset()
