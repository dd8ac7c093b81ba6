"""Evidently's DataDriftPreset on the drift benchmark's data; run by bench/drift_bench.py in its own venv.

    python bench/drift_evidently.py DATA.npz RUNS

Evidently 0.7 breaks with pandas 3 (it imports a pandas function pandas 3 removed) while the
project's venv has pandas 3, so it runs in a venv of its own and reads the data from a file.
Prints JSON: the wall time of each run (Dataset.from_pandas and Report.run; building the
DataFrames is not counted) and each column's method, value, threshold and verdict.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main() -> None:
    path, runs = sys.argv[1], int(sys.argv[2])
    data = np.load(path)
    numeric = [k[len("reference/") :] for k in data.files if k.startswith("reference/num_")]
    categorical = [k[len("reference/") :] for k in data.files if k.startswith("reference/cat_")]
    frames = {
        side: pd.DataFrame(
            {name: data[f"{side}/{name}"] for name in numeric}
            | {name: data[f"{side}/{name}"].astype(object) for name in categorical}
        )
        for side in ("reference", "current")
    }
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    seconds = []
    snapshot = None
    for _ in range(runs):
        started = time.perf_counter()
        current = Dataset.from_pandas(frames["current"], data_definition=definition)
        reference = Dataset.from_pandas(frames["reference"], data_definition=definition)
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        seconds.append(time.perf_counter() - started)
    assert snapshot is not None
    columns = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            value = float(metric["value"])
            columns[config["column"]] = {
                "method": config["method"],
                "value": value,
                "threshold": config["threshold"],
                "drifted": value >= config["threshold"],  # distances: drift at or above the threshold
            }
    versions = {"evidently": __import__("evidently").__version__, "pandas": pd.__version__}
    print(json.dumps({"seconds": seconds, "columns": columns, "versions": versions}))


if __name__ == "__main__":
    main()
