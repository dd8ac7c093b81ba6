"""A batch-scoring test model: the artifacts hold a word list; a message scores by the words it has."""

from pathlib import Path

from pydantic import BaseModel


class Message(BaseModel):
    text: str
    channel: str = "web"
    priority: int = 0


class Hit(BaseModel):
    word: str
    at: int


class Score(BaseModel):
    label: str
    probability: float
    hits: list[Hit]
    words: int


def load(artifacts: Path) -> list[str]:
    return (artifacts / "words.txt").read_text().split()


def predict_batch(words: list[str], messages: list[Message]) -> list[Score]:
    out = []
    for m in messages:
        if m.text == "boom":
            raise ValueError("the model cannot read 'boom'")
        tokens = m.text.lower().split()
        hits = [Hit(word=t, at=i) for i, t in enumerate(tokens) if t in words]
        probability = min(1.0, len(hits) / 2 + m.priority / 10)
        out.append(Score(label="card" if hits else "other", probability=probability, hits=hits, words=len(tokens)))
    return out


example = Message(text="my card")
