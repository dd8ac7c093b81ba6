"""A small, deterministic service with every kind of stage, for the validation tests.

A keyword "model" labels a message and ranks help articles; around it, a before-stage
that can cut the message, an after-stage that hides internal articles, and a rules
stage that sends urgent messages to another queue and overrides their label. Creating a
file named `broken` beside this file makes the model mislabel card messages (the
scheduled-validation tests flip it while a server runs).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

import shipway
from shipway.core.pipeline import Decided

HERE = Path(__file__).resolve().parent
MAX_CHARS = 60  # the before-stage `truncate` keeps this many characters

KEYWORDS = {
    "card_arrival": ("card", "arrive", "arrived", "post", "delivery"),
    "refund": ("refund", "money back", "return"),
    "pin_blocked": ("pin", "blocked", "locked"),
    "travel": ("abroad", "travel", "holiday"),
}
ARTICLES = {
    "doc-card-delivery": ("card", "delivery", "post", "arrive"),
    "doc-refunds": ("refund", "return", "money back"),
    "doc-pin": ("pin", "blocked"),
    "doc-internal-card-faq": ("card", "arrive", "arrived", "delivery", "post", "late"),
}


class Query(BaseModel):
    text: str
    raise_in_predict: bool = False


class Alternative(BaseModel):
    label: str
    probability: float


class Hit(BaseModel):
    id: str
    score: float


class Answer(BaseModel):
    label: str
    probability: float
    alternatives: list[Alternative]
    results: list[Hit]
    length: int


def normalise(query: Query) -> Query:
    return Query(text=" ".join(query.text.lower().split()), raise_in_predict=query.raise_in_predict)


def truncate(query: Query) -> Query:
    return (
        query
        if len(query.text) <= MAX_CHARS
        else Query(text=query.text[:MAX_CHARS], raise_in_predict=query.raise_in_predict)
    )


def _hits(text: str, words: tuple[str, ...]) -> int:
    return sum(text.count(w) for w in words)


def predict(query: Query) -> Answer:
    if query.raise_in_predict:
        raise RuntimeError("predict exploded on purpose")
    scores = {label: _hits(query.text, words) + 0.1 for label, words in KEYWORDS.items()}
    scores["other"] = 0.5  # wins when no keyword is found
    if (HERE / "broken").exists() and scores["card_arrival"] > 1:
        scores["card_arrival"], scores["travel"] = 0.1, scores["card_arrival"]
    total = sum(scores.values())
    ranked = sorted(scores, key=lambda k: (-scores[k], k))
    articles = {doc: _hits(query.text, words) for doc, words in ARTICLES.items()}
    results = [Hit(id=d, score=s) for d, s in sorted(articles.items(), key=lambda kv: (-kv[1], kv[0])) if s > 0]
    return Answer(
        label=ranked[0],
        probability=scores[ranked[0]] / total,
        alternatives=[Alternative(label=k, probability=scores[k] / total) for k in ranked[1:]],
        results=results,
        length=len(query.text),
    )


def hide_internal(answer: Answer) -> Answer:
    """Customers must not see internal articles."""
    return answer.model_copy(update={"results": [h for h in answer.results if "internal" not in h.id]})


def _route(answer: Answer, query: Query) -> Decided:
    urgent = "urgent" in query.text.lower()
    decision = {
        "queue": "urgent" if urgent else "general",
        "review": False,
        "fired": ["urgent-words"] if urgent else [],
    }
    output = answer.model_copy(update={"label": "escalation"}) if urgent else answer
    return Decided(output=output, decision=decision, model_output=answer)


before = [normalise, truncate]
after = [hide_internal, shipway.Stage("route", "rules", one=_route)]
example = Query(text="warm-up")
