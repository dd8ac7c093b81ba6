"""Fields: where the label, its probability and the ranked list are in an output.

A suite's `fields:` mapping names them; each has a default that fits the usual
classifier output (`{"intent": ..., "probability": ..., "alternatives": [...]}`).
Paths are dotted, with list indices as numbers: `decision.queue`, `results.0.id`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from shipway.common.positions import where
from shipway.common.suggest import did_you_mean
from shipway.errors import SuiteError

__all__ = ["MISSING", "Fields", "get_path", "shorten"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

# When a suite does not name a field, the first of these the output has is used.
AUTO = {
    "label": ("intent", "label"),
    "probability": ("probability", "score"),
    "topk": ("alternatives",),
    "key": ("intent", "label", "id", "name", "key"),
}
ITEM_PROBABILITY = ("probability", "score")


def get_path(value: Any, path: str) -> Any:
    """The value at a dotted path, or MISSING."""
    for part in path.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and _is_index(part):
            index = int(part)
            if not -len(value) <= index < len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value


def _is_index(part: str) -> bool:
    return part.lstrip("-").isdigit()


def shorten(value: Any, limit: int = 80) -> str:
    """A repr short enough for a table cell or a Slack line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def keys_of(output: Any) -> str:
    if isinstance(output, Mapping):
        return ", ".join(map(str, output)) or "none"
    return f"none (the output is a {type(output).__name__})"


@dataclass(frozen=True, slots=True)
class Fields:
    """Paths of the label, probability, ranked list (`topk`), its items' key, and the queue."""

    label: str | None = None
    probability: str | None = None
    topk: str | None = None
    key: str | None = None
    queue: str = "decision.queue"

    @classmethod
    def parse(cls, data: Any) -> Fields:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise SuiteError(f"{where(data, fallback='fields')}: `fields` must be a mapping like {{label: intent}}.")
        names = [f.name for f in fields(cls)]
        values: dict[str, str] = {}
        for key, value in data.items():
            if key not in names:
                raise SuiteError(
                    f"{where(data, key, 'fields')}: unknown field name {key!r}; the names are "
                    f"{', '.join(names)}.{did_you_mean(str(key), names)}"
                )
            if not isinstance(value, str) or not value:
                raise SuiteError(f"{where(data, key, 'fields')}: `{key}` must be a dotted path like `decision.queue`.")
            values[key] = value
        return replace(cls(), **values)

    def to_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    # -- the label and its probability -----------------------------------------

    def path(self, name: str, output: Any) -> str | None:
        """The path used for `name` in this output: the suite's, or the first default present."""
        chosen: str | None = getattr(self, name)
        if chosen is not None:
            return chosen
        if isinstance(output, Mapping):
            return next((p for p in AUTO[name] if p in output), None)
        return None

    def label_of(self, output: Any) -> Any:
        if not isinstance(output, Mapping) and self.label is None:
            return output if isinstance(output, (str, int, bool)) else MISSING
        path = self.path("label", output)
        return MISSING if path is None else get_path(output, path)

    def probability_of(self, output: Any) -> Any:
        path = self.path("probability", output)
        value = MISSING if path is None else get_path(output, path)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else MISSING

    def missing(self, name: str, output: Any) -> str:
        tried = getattr(self, name) or " or ".join(AUTO[name])
        return (
            f"the output has no {name} field (looked for {tried}); its fields are {keys_of(output)}. "
            f"Name it in the suite: `fields: {{{name}: <path>}}`."
        )

    # -- ranked lists ----------------------------------------------------------

    def items(self, output: Any, path: str | None = None, key: str | None = None) -> list[tuple[Any, float | None]]:
        """The ranked list at `path` (default: `topk`) as (item, probability) pairs, best first.

        Raises LookupError with a readable message when the list is not there.
        """
        list_path = path or self.path("topk", output)
        ranked = MISSING if list_path is None else get_path(output, list_path)
        if not isinstance(ranked, Sequence) or isinstance(ranked, (str, bytes)):
            if path is None and self.topk is None and list_path is None:
                raise LookupError(self.missing("topk", output))
            raise LookupError(f"the output has no list at {list_path!r}; its fields are {keys_of(output)}.")
        pairs: list[tuple[Any, float | None]] = []
        item_key = key or self.key
        for entry in ranked:
            if not isinstance(entry, Mapping):
                pairs.append((entry, None))
                continue
            name_key = item_key or next((k for k in AUTO["key"] if k in entry), None)
            name = get_path(entry, name_key) if name_key else MISSING
            p = next((entry[k] for k in ITEM_PROBABILITY if isinstance(entry.get(k), (int, float))), None)
            pairs.append((name, float(p) if p is not None else None))
        return pairs

    def ranking(self, output: Any) -> list[tuple[Any, float | None]]:
        """The label first, then the ranked alternatives after it (without repeating it)."""
        label = self.label_of(output)
        if label is MISSING:
            raise LookupError(self.missing("label", output))
        probability = self.probability_of(output)
        ranked: list[tuple[Any, float | None]] = [(label, None if probability is MISSING else probability)]
        try:
            alternatives = self.items(output)
        except LookupError:
            alternatives = []
        ranked.extend(pair for pair in alternatives if pair[0] != label)
        return ranked


def rank_of(pairs: list[tuple[Any, float | None]], item: Any) -> tuple[int | None, float | None]:
    """The 1-based position of `item` in a ranked list and its probability, or (None, None)."""
    for position, (name, probability) in enumerate(pairs, start=1):
        if name == item:
            return position, probability
    return None, None


def percent(p: float | None) -> str:
    return "" if p is None else f" ({p:.2f})"
