"""BANKING77 intent router: a customer-support message in, its intent and runners-up out.

A plain module following shipway's service protocol; `shipway serve examples/banking77`
imports it. Train the model first with `python train.py`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field, TypeAdapter

import shipway.recipes

HERE = Path(__file__).resolve().parent

ALTERNATIVES = 3

# The model's cost grows with the message's length, and customers sometimes paste whole email
# threads; keeping the first characters bounds latency. 160 covers almost all real messages
# (96% of the training messages) but cuts the tail of long ones: see validation/intents.yaml.
MAX_CHARS = 160


class Message(BaseModel):
    """A customer's message to support."""

    # The pattern rejects whitespace-only text, which would otherwise get a confident guess. It
    # is Python's \S (what normalise's str.split() splits on: Unicode's White_Space and the
    # separators U+001C..U+001F) in pydantic's default engine, Rust's regex, whose \s lacks the
    # separators: the same characters (every code point checked), at two thirds of the cost of
    # regex_engine="python-re" per message.
    text: str = Field(
        min_length=1,
        max_length=2000,
        pattern=r"[^\s\x1c-\x1f]",
        description="The customer's message, as typed.",
        examples=["I am still waiting on my card?"],
    )


# A plain dataclass, not a pydantic model: predict_batch makes three per message, and a
# dataclass costs a fraction of a model to make. pydantic checks, documents and serialises it
# the same way (the same JSON schema, the same JSON).
@dataclass(slots=True)
class Alternative:
    intent: Annotated[str, Field(description="One of the 77 BANKING77 intents.")]
    probability: Annotated[float, Field(ge=0.0, le=1.0)]


class Intent(BaseModel):
    """The most likely intent, and the next most likely ones for routing fallbacks."""

    intent: str = Field(description="The most likely of the 77 BANKING77 intents.")
    probability: float = Field(ge=0.0, le=1.0)
    alternatives: list[Alternative] = Field(
        description=f"The {ALTERNATIVES} next most likely intents after `intent`, most likely first."
    )


INTENTS = TypeAdapter(list[Intent])


def load(artifacts: Path) -> shipway.recipes.Predictor:
    """The model in `artifacts`, whichever recipe trained it (train.py's is the tfidf-lr recipe;
    `shipway try` writes others): the manifest names the recipe, which loads its own files."""
    return shipway.recipes.load(Path(artifacts), project=HERE)


def normalise(message: Message) -> Message:
    """Collapse runs of whitespace to one space, as data.py does to the training texts."""
    text = " ".join(message.text.split())
    return message if text == message.text else Message(text=text)


def truncate(message: Message) -> Message:
    """Keep the first MAX_CHARS characters, so one long message cannot slow a whole batch."""
    return message if len(message.text) <= MAX_CHARS else Message(text=message.text[:MAX_CHARS])


def top(model: shipway.recipes.Predictor, messages: list[Message]) -> tuple[np.ndarray, np.ndarray]:
    """Each message's ALTERNATIVES + 1 most likely intents (their indices in `model.classes_`) and
    their probabilities, most likely first: two arrays of shape (messages, ALTERNATIVES + 1)."""
    proba = model.predict_proba([m.text for m in messages])
    k, rows = ALTERNATIVES + 1, np.arange(len(messages))
    indices, probabilities = np.empty((len(messages), k), dtype=np.intp), np.empty((len(messages), k))
    # k passes of argmax over the batch, each taking the best left out: a few times faster than
    # argpartition, which selects row by row. Of equal probabilities, the first intent comes first.
    for column in range(k):
        best = proba.argmax(axis=1)
        indices[:, column], probabilities[:, column] = best, proba[rows, best]
        proba[rows, best] = -np.inf
    return indices, probabilities


def predict_batch(model: shipway.recipes.Predictor, messages: list[Message]) -> list[Intent]:
    """Classify all messages with one predict_proba call; same order as `messages`."""
    if not messages:
        return []
    indices, probs = top(model, messages)
    # One conversion to Python lists for the whole batch, not one per item.
    intents, probabilities = model.classes_[indices].tolist(), probs.tolist()
    # One call to pydantic's compiled validator makes the batch's answers from plain dicts (it
    # takes the Alternatives as they are): a few times cheaper than Intent.model_construct per
    # message, and the fields are checked (a probability outside [0, 1] is refused).
    return INTENTS.validate_python(
        [
            {
                "intent": names[0],
                "probability": probs[0],
                "alternatives": [Alternative(name, p) for name, p in zip(names[1:], probs[1:], strict=True)],
            }
            for names, probs in zip(intents, probabilities, strict=True)
        ]
    )


def predict_columns(model: shipway.recipes.Predictor, messages: list[Message]) -> dict[str, object]:
    """predict_batch's answers as columns, for batch scoring (`shipway score`): no object per
    message. shipway checks the columns against Intent (a probability outside [0, 1] fails its
    row, as predict_batch would refuse it)."""
    indices, probs = top(model, messages)
    # The intents' names taken from one Arrow array of the 77: no Python string per message.
    names = pa.array(model.classes_)
    return {
        "intent": names.take(indices[:, 0]),
        "probability": probs[:, 0],
        # A list of objects as its fields' columns, a list per message: a fixed-size list array
        # and a 2-D array.
        "alternatives": {
            "intent": pa.FixedSizeListArray.from_arrays(names.take(indices[:, 1:].ravel()), ALTERNATIVES),
            "probability": probs[:, 1:],
        },
    }


def predict(model: shipway.recipes.Predictor, message: Message) -> Intent:
    """Classify one message; the same code path as predict_batch, so the answers match."""
    return predict_batch(model, [message])[0]


before = [normalise, truncate]
example = Message(text="I am still waiting on my card?")
