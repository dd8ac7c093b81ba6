"""A stand-in article search for the metrics tests: the text "a b c" ranks a, then b, then c."""

from pydantic import BaseModel


class Query(BaseModel):
    text: str


class RankedItem(BaseModel):
    item: str
    score: float


class Ranking(BaseModel):
    items: list[RankedItem]


def predict(query: Query) -> Ranking:
    words = query.text.split()
    return Ranking(items=[RankedItem(item=w, score=1.0 / (i + 1)) for i, w in enumerate(words)])


example = Query(text="card_arrival lost_card")
default = Ranking(items=[])
