"""Sets of values a cell or a simple condition accepts, for reachability and overlap checks.

A `Region` is a union of number intervals, a finite or co-finite set of
texts, a set of booleans, and whether a missing value or a value of another
kind (a list, an object) is in. It supports exactly what the checker needs:
intersection, complement, emptiness and inclusion. Tests it cannot represent
(an endpoint that is a field, a comparison between texts) give None: unknown,
and the checker then says nothing rather than something wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["EVERYTHING", "NOTHING", "Region"]

# An interval: (low, low_closed, high, high_closed)
Span = tuple[float, bool, float, bool]


def _norm(spans: list[Span]) -> tuple[Span, ...]:
    spans = [s for s in spans if s[0] < s[2] or (s[0] == s[2] and s[1] and s[3])]
    spans.sort(key=lambda s: (s[0], not s[1]))
    out: list[Span] = []
    for span in spans:
        if out:
            lo, lc, hi, hc = out[-1]
            if span[0] < hi or (span[0] == hi and (hc or span[1])):
                if span[2] > hi or (span[2] == hi and span[3]):
                    out[-1] = (lo, lc, span[2], span[3] or (span[2] == hi and hc))
                continue
        out.append(span)
    return tuple(out)


def _intersect_spans(a: tuple[Span, ...], b: tuple[Span, ...]) -> tuple[Span, ...]:
    out: list[Span] = []
    for alo, alc, ahi, ahc in a:
        for blo, blc, bhi, bhc in b:
            if alo > blo or (alo == blo and not alc):
                lo, lc = alo, alc
            else:
                lo, lc = blo, blc
            if ahi < bhi or (ahi == bhi and not ahc):
                hi, hc = ahi, ahc
            else:
                hi, hc = bhi, bhc
            out.append((lo, lc, hi, hc))
    return _norm(out)


def _complement_spans(a: tuple[Span, ...]) -> tuple[Span, ...]:
    out: list[Span] = []
    lo, lc = -math.inf, False
    for slo, slc, shi, shc in a:
        out.append((lo, lc, slo, not slc))
        lo, lc = shi, not shc
    out.append((lo, lc, math.inf, False))
    return _norm(out)


@dataclass(frozen=True)
class Region:
    numbers: tuple[Span, ...] = ()
    texts: frozenset[str] = frozenset()
    texts_cofinite: bool = False  # True: every text except `texts`
    booleans: frozenset[bool] = frozenset()
    null: bool = False
    other: bool = False  # lists, objects

    @classmethod
    def value(cls, value: Any) -> Region | None:
        if value is None:
            return cls(null=True)
        if isinstance(value, bool):
            return cls(booleans=frozenset({value}))
        if isinstance(value, (int, float)):
            return cls(numbers=((float(value), True, float(value), True),))
        if isinstance(value, str):
            return cls(texts=frozenset({value}))
        return None

    @classmethod
    def compare(cls, op: str, value: Any) -> Region | None:
        """The values v for which `v op value` holds (missing never does)."""
        if op == "==":
            return None if value is None else cls.value(value)
        if op == "!=":
            region = cls.value(value)
            return None if region is None or value is None else region.complement().minus_null()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        x = float(value)
        span = {
            "<": (-math.inf, False, x, False),
            "<=": (-math.inf, False, x, True),
            ">": (x, False, math.inf, False),
            ">=": (x, True, math.inf, False),
        }[op]
        return cls(numbers=(span,))

    @classmethod
    def interval(cls, low: Any, high: Any, low_closed: bool, high_closed: bool) -> Region | None:
        numbers = [v for v in (low, high) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) != 2:
            return None
        return cls(numbers=_norm([(float(low), low_closed, float(high), high_closed)]))

    @classmethod
    def kinds(cls, kinds: frozenset[str] | None) -> Region:
        """Every value of these JSON kinds (None: any kind), plus missing."""
        if kinds is None:
            return EVERYTHING
        return cls(
            numbers=((-math.inf, False, math.inf, False),) if "number" in kinds else (),
            texts_cofinite="string" in kinds,
            booleans=frozenset({True, False}) if "boolean" in kinds else frozenset(),
            null=True,
            other=bool(kinds & {"array", "object"}),
        )

    def union(self, other: Region) -> Region:
        if self.texts_cofinite and other.texts_cofinite:
            texts, cofinite = self.texts & other.texts, True
        elif self.texts_cofinite:
            texts, cofinite = self.texts - other.texts, True
        elif other.texts_cofinite:
            texts, cofinite = other.texts - self.texts, True
        else:
            texts, cofinite = self.texts | other.texts, False
        return Region(
            _norm([*self.numbers, *other.numbers]),
            texts,
            cofinite,
            self.booleans | other.booleans,
            self.null or other.null,
            self.other or other.other,
        )

    def intersect(self, other: Region) -> Region:
        if self.texts_cofinite and other.texts_cofinite:
            texts, cofinite = self.texts | other.texts, True
        elif self.texts_cofinite:
            texts, cofinite = other.texts - self.texts, False
        elif other.texts_cofinite:
            texts, cofinite = self.texts - other.texts, False
        else:
            texts, cofinite = self.texts & other.texts, False
        return Region(
            _intersect_spans(self.numbers, other.numbers),
            texts,
            cofinite,
            self.booleans & other.booleans,
            self.null and other.null,
            self.other and other.other,
        )

    def complement(self) -> Region:
        return Region(
            _complement_spans(self.numbers),
            self.texts,
            not self.texts_cofinite,
            frozenset({True, False}) - self.booleans,
            not self.null,
            not self.other,
        )

    def minus_null(self) -> Region:
        return Region(self.numbers, self.texts, self.texts_cofinite, self.booleans, False, self.other)

    @property
    def empty(self) -> bool:
        return not (self.numbers or self.texts or self.texts_cofinite or self.booleans or self.null or self.other)

    def within(self, other: Region) -> bool:
        return self.intersect(other.complement()).empty


EVERYTHING = Region.kinds(frozenset({"number", "string", "boolean", "array"}))
NOTHING = Region()
