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
    "write_split",
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


def test_the_offline_subpackages_pin_their_names() -> None:
    import shipway.engine
    import shipway.scoring

    assert shipway.engine.__all__ == ["ENGINES", "FORMATS", "Job", "Source", "run"]
    assert shipway.scoring.__all__ == ["OutputColumns", "ScoreJob", "ScoreSummary", "score"]


def test_the_shared_and_monitoring_subpackages_pin_their_names() -> None:
    import shipway.monitoring.alerts
    import shipway.monitoring.drift
    import shipway.monitoring.metrics
    import shipway.web

    pinned = {
        shipway.monitoring.drift: [
            "DriftJob",
            "DriftReport",
            "Profile",
            "Thresholds",
            "Window",
            "WindowSummary",
            "compare",
            "compare_summary",
            "merged",
            "window_from_records",
            "window_from_store",
        ],
        shipway.monitoring.alerts: [
            "AlertRule",
            "AlertRules",
            "Alerter",
            "Channel",
            "Evaluation",
            "Metric",
            "load_alerts",
            "parse_alerts",
        ],
        shipway.monitoring.metrics: ["OnlineMetrics", "online_metrics", "recent_predictions"],
        shipway.web: [
            "FailedAttempts",
            "Refusal",
            "bearer",
            "check_token",
            "clean_id",
            "dumps",
            "error_body",
            "new_id",
            "token_matches",
        ],
    }
    for package, names in pinned.items():
        assert package.__all__ == names, package.__name__
        for name in names:  # each one resolves, from the module that defines it
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"


def test_every_public_error_class_is_exported_by_its_module() -> None:
    import importlib
    import pkgutil

    missing = []
    for info in pkgutil.walk_packages(shipway.__path__, "shipway."):
        if "._" in info.name or info.name.startswith("shipway.templates.template"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an adapter whose optional library is not installed
            continue
        for name, value in vars(module).items():
            defined_here = isinstance(value, type) and value.__module__ == module.__name__
            if defined_here and issubclass(value, Exception) and not name.startswith("_"):
                if name not in getattr(module, "__all__", ()):
                    missing.append(f"{module.__name__}.{name}")
    assert missing == []


def test_the_common_helpers_pin_their_names() -> None:
    from shipway.common import diagnostics, lazy, merging, positions, suggest, times

    assert diagnostics.__all__ == ["SEVERITIES", "Diagnostic", "Diagnostics"]
    assert lazy.__all__ == ["lazy_names"]
    assert merging.__all__ == ["combine", "greatest", "least", "merge_fields"]
    assert positions.__all__ == [
        "Located",
        "LocatedList",
        "YamlSyntaxError",
        "compose",
        "line_of",
        "load_located",
        "position",
        "where",
    ]
    assert suggest.__all__ == ["CUTOFF", "closest", "did_you_mean"]
    assert times.__all__ == [
        "AHEAD_S",
        "EARLIEST",
        "TIME_HELP",
        "UNITS",
        "check_time",
        "iso",
        "parse_duration",
        "parse_iso",
        "parse_time",
    ]
