"""Recipes: named, documented ways to train a model for a task kind, whose artifacts any
service loads the same way (docs/recipes.md).

    predictor = shipway.recipes.load(artifacts)     # in service.py's load()
    predictor.predict_proba(texts), predictor.classes_, predictor.predict(inputs)
"""

from shipway.recipes._base import KINDS, Data, Param, Predictor, Recipe, Split
from shipway.recipes._catalog import BUILT_IN, catalog, get
from shipway.recipes._fit import artifacts_digest, load, score, train

__all__ = [
    "BUILT_IN",
    "KINDS",
    "Data",
    "Param",
    "Predictor",
    "Recipe",
    "Split",
    "artifacts_digest",
    "catalog",
    "get",
    "load",
    "score",
    "train",
]
