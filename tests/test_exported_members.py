"""shipway's public API is `shipway.__all__`: pinned here, so changing it is a decision."""

from __future__ import annotations

import types

import shipway

EXPORTED = [
    "ArtifactError",
    "ConfigError",
    "InputError",
    "LoadError",
    "OutputError",
    "Overloaded",
    "PayloadError",
    "Pipeline",
    "PredictError",
    "PredictTimeout",
    "Run",
    "Service",
    "ServiceError",
    "Settings",
    "ShipwayError",
    "Stage",
    "StageRecord",
    "StoreError",
    "StoreUnavailable",
    "Trace",
    "__version__",
    "active_run",
    "load_settings",
    "run",
    "start_run",
    "verify_artifacts",
    "write_manifest",
]


def test_all_is_pinned_and_sorted() -> None:
    assert shipway.__all__ == EXPORTED
    assert EXPORTED == sorted(EXPORTED)


def test_every_exported_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from shipway import *", namespace)
    for name in EXPORTED:
        assert getattr(shipway, name) is not None, name
    assert set(EXPORTED) - {"__version__"} <= set(namespace)


def test_every_public_name_is_exported() -> None:
    # Like httpx: a public name in the package namespace is either exported or a subpackage.
    public = {
        name
        for name, value in vars(shipway).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(EXPORTED) - {"__version__"}
