"""Which recipes exist: the built-in ones, and a project's own, one file each in its recipes/ folder.

A project's recipe is a Python file in `<project>/recipes/` defining a subclass of
`shipway.recipes.Recipe` with a `name`; its name may not shadow a built-in one.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from shipway.errors import RecipeError
from shipway.recipes._base import Recipe

__all__ = ["BUILT_IN", "catalog", "get"]

# name -> "module:class"; modules are imported only when their recipe is asked for, so a
# missing optional library fails that recipe alone.
BUILT_IN = {
    "tfidf-lr": "shipway.recipes.text:TfidfLogistic",
    "tfidf-nb": "shipway.recipes.text:TfidfNaiveBayes",
    "char-svm": "shipway.recipes.text:CharSVM",
    "tfidf-centroid": "shipway.recipes.text:TfidfCentroid",
    "minilm-lr": "shipway.recipes.text:MiniLMLogistic",
    "minilm-knn": "shipway.recipes.text:MiniLMKNN",
    "minilm-svm": "shipway.recipes.text:MiniLMSVM",
    "minilm-finetune": "shipway.recipes.finetune:MiniLMFineTuned",
    "ensemble": "shipway.recipes.ensemble:Ensemble",
    "tabular-lr": "shipway.recipes.tabular:Logistic",
    "random-forest": "shipway.recipes.tabular:RandomForest",
    "hist-gbm": "shipway.recipes.tabular:HistGradientBoosting",
    "lightgbm": "shipway.recipes.tabular:LightGBM",
    "xgboost": "shipway.recipes.tabular:XGBoost",
}


def _project_recipes(project: Path | None) -> dict[str, type[Recipe]]:
    folder = Path(project) / "recipes" if project is not None else None
    if folder is None or not folder.is_dir():
        return {}
    found: dict[str, type[Recipe]] = {}
    for path in sorted(folder.glob("*.py")):
        module_name = f"shipway_project_recipes.{path.stem}"
        module = sys.modules.get(module_name)
        if module is None or getattr(module, "__file__", None) != str(path):
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Recipe) and cls.__module__ == module_name and cls.name:
                if cls.name in BUILT_IN:
                    raise RecipeError(
                        f"{path}: recipe name {cls.name!r} is a built-in recipe's; rename it (for example "
                        f"{cls.name + '-custom'!r})."
                    )
                found[cls.name] = cls
    return found


def catalog(project: Path | None = None) -> dict[str, str]:
    """Every recipe name -> where it is defined, built-in first."""
    names = dict(BUILT_IN)
    for name, cls in _project_recipes(project).items():
        names[name] = str(inspect.getsourcefile(cls))
    return names


def get(name: str, project: Path | None = None) -> Recipe:
    """A fresh instance of the recipe called `name`."""
    if name in BUILT_IN:
        module, _, attribute = BUILT_IN[name].partition(":")
        cls: type[Recipe] = getattr(importlib.import_module(module), attribute)
        return cls()
    own = _project_recipes(project)
    if name in own:
        return own[name]()
    where = f" or in {Path(project) / 'recipes'}" if project is not None else ""
    raise RecipeError(
        f"no recipe {name!r} built in{where}; the recipes are: {', '.join(catalog(project))}. "
        "A project adds its own as one file in its recipes/ folder (docs/recipes.md)."
    )
