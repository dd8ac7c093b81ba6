"""Small projects for the recipe tests: a text task and a tabular task, a few dozen rows each."""

from __future__ import annotations

import csv
import random
from pathlib import Path

TEXT_SERVICE = """
from pathlib import Path

from pydantic import BaseModel

import shipway.recipes

HERE = Path(__file__).resolve().parent


class Message(BaseModel):
    text: str


class Topic(BaseModel):
    topic: str
    probability: float


def load(artifacts: Path) -> shipway.recipes.Predictor:
    return shipway.recipes.load(artifacts, project=HERE)


def predict(model: shipway.recipes.Predictor, message: Message) -> Topic:
    proba = model.predict_proba([message.text])[0]
    best = int(proba.argmax())
    return Topic(topic=str(model.classes_[best]), probability=float(proba[best]))
"""

WORDS = {
    "card": ["card", "arrived", "delivery", "post", "mail"],
    "refund": ["refund", "money", "back", "return", "charge"],
    "pin": ["pin", "code", "forgot", "blocked", "reset"],
}


def _texts(rng: random.Random, n: int) -> list[tuple[str, str]]:
    rows = []
    for i in range(n):
        topic = list(WORDS)[i % len(WORDS)]
        words = rng.sample(WORDS[topic], 3) + rng.sample(["my", "the", "please", "help", "i", "need"], 2)
        rng.shuffle(words)
        rows.append((" ".join(words), topic))
    return rows


def _write(path: Path, header: list[str], rows: list[tuple]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def text_project(root: Path) -> Path:
    """A topic classifier over short messages; `category` is the target."""
    rng = random.Random(7)
    (root / "service.py").write_text(TEXT_SERVICE)
    (root / "shipway.toml").write_text('name = "topics"\n\n[data]\ntarget = "category"\n')
    folder = root / "build" / "dataset"
    folder.mkdir(parents=True)
    for split, n in (("train", 60), ("valid", 15), ("test", 15)):
        _write(folder / f"{split}.csv", ["text", "category"], _texts(rng, n))
    return root


RANKING_SERVICE = """
from pathlib import Path

from pydantic import BaseModel

import shipway.recipes

HERE = Path(__file__).resolve().parent


class Query(BaseModel):
    text: str


class Article(BaseModel):
    item: str
    score: float


class Ranking(BaseModel):
    items: list[Article]


def load(artifacts: Path) -> shipway.recipes.Predictor:
    return shipway.recipes.load(artifacts, project=HERE)


def predict(model: shipway.recipes.Predictor, query: Query) -> Ranking:
    [ranked] = model.rank([query.text], k=3)
    return Ranking(items=[Article(item=item, score=score) for item, score in ranked])
"""


def ranking_project(root: Path) -> Path:
    """A help-article search: each query's `article` is the one that answers it; ranked by NDCG."""
    rng = random.Random(5)
    (root / "service.py").write_text(RANKING_SERVICE)
    (root / "shipway.toml").write_text('name = "help-search"\n\n[data]\ntarget = "article"\nmetric = "ndcg"\n')
    folder = root / "build" / "dataset"
    folder.mkdir(parents=True)
    for split, n in (("train", 60), ("valid", 15), ("test", 15)):
        rows = [(text, f"help/{topic}") for text, topic in _texts(rng, n)]
        _write(folder / f"{split}.csv", ["text", "article"], rows)
    return root


TABULAR_SERVICE = """
from pathlib import Path

from pydantic import BaseModel

import shipway.recipes

HERE = Path(__file__).resolve().parent


class Applicant(BaseModel):
    income: float
    region: str


def load(artifacts: Path) -> shipway.recipes.Predictor:
    return shipway.recipes.load(artifacts, project=HERE)


def predict(model: shipway.recipes.Predictor, applicant: Applicant) -> dict:
    return {"label": str(model.predict([applicant.model_dump()])[0])}
"""


def tabular_project(root: Path) -> Path:
    """Approve or refuse from an income and a region; `label` is the target."""
    rng = random.Random(3)
    (root / "service.py").write_text(TABULAR_SERVICE)
    (root / "shipway.toml").write_text('name = "loans"\n\n[data]\ntarget = "label"\n')
    folder = root / "build" / "dataset"
    folder.mkdir(parents=True)
    for split, n in (("train", 80), ("valid", 20), ("test", 20)):
        rows = []
        for _ in range(n):
            income, region = rng.uniform(0, 10), rng.choice(["north", "south"])
            rows.append((round(income, 3), region, "yes" if income + (region == "north") > 5.5 else "no"))
        _write(folder / f"{split}.csv", ["income", "region", "label"], rows)
    return root
