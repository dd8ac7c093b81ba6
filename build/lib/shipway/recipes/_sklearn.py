"""Saving scikit-learn models with skops: only trusted types are built back, no code runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipway.errors import RecipeError

__all__ = ["load_skops", "save_skops"]


def _skops() -> Any:
    try:
        import skops.io
    except ImportError:
        raise RecipeError(
            "scikit-learn recipes need skops; install it with `pip install 'shipway[sklearn]'`."
        ) from None
    return skops.io


def save_skops(model: Any, path: Path, trusted: Sequence[str] = ()) -> None:
    """Dump `model`, refusing one that holds a type skops would not build back without review
    (beyond `trusted`: the reviewed types a recipe names)."""
    sio = _skops()
    sio.dump(model, path)
    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in trusted]
    if untrusted:
        path.unlink()
        raise RecipeError(
            f"the model holds types skops does not trust: {untrusted}; a recipe's model must be built from "
            "scikit-learn, numpy and scipy types only."
        )


def load_skops(path: Path, trusted: Sequence[str] = ()) -> Any:
    return _skops().load(path, trusted=list(trusted))
