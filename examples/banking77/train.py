"""Train the BANKING77 intent model: TF-IDF features and logistic regression.

Learning code only: it reads the dataset that data.py built and writes

    artifacts/model.skops       the fitted scikit-learn Pipeline (text in, 77 probabilities out), in
                                skops's format: loading it builds only trusted types, never runs code
    artifacts/manifest.json     version, dataset_version, run_id, metrics, parameters, and the
                                sha256 of every file above, which every load checks (docs/security.md)
    artifacts/profile.json      the reference for drift detection: the training texts, and the
                                service's answers on the validation split (docs/drift.md)

shipway tags every prediction with `version`, `dataset_version` and `run_id` from the manifest.

    python train.py [--dataset build/dataset] [--artifacts artifacts]

builds the dataset first when it is missing. Either way the training is a tracked run in the
project's store (docs/experiments.md); `shipway train --set classifier.C=5` runs it with an
override, and `shipway reproduce RUN` runs it again from the recorded code, data and seeds.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import platform
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy
import sklearn
import skops
import skops.io
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import shipway
from shipway.core.artifacts import file_sha256
from shipway.experiments.dataset_versions import content_version
from shipway.monitoring.drift.profile import Profile

HERE = Path(__file__).resolve().parent

# Word 1-2-grams only. Adding character 2-4-grams lifted test accuracy from 0.888 to 0.910 but
# made prediction four times slower (n-gram extraction is Python code in scikit-learn); the
# example favours speed, as the reference model (about 0.89) does.
PARAMS = {
    "words": {"ngram_range": (1, 2), "sublinear_tf": True},
    "classifier": {"C": 20.0, "max_iter": 1000},
}


def make_pipeline(params: dict = PARAMS) -> Pipeline:
    # A configuration read back from JSON (a run's) has a list where scikit-learn wants a tuple.
    words = {**params["words"], "ngram_range": tuple(params["words"]["ngram_range"])}
    return Pipeline(
        [("features", TfidfVectorizer(**words)), ("classifier", LogisticRegression(**params["classifier"]))]
    )


def read_split(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def service_answers(model: Pipeline, texts: list[str]) -> list[dict]:
    """The service's answers to `texts`, as it returns them: its input stages, then predict_batch."""
    # Imported by path: service.py is a sibling module, not an installed package.
    spec = importlib.util.spec_from_file_location("banking77_service", HERE / "service.py")
    assert spec is not None and spec.loader is not None
    service = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(service)
    messages = []
    for text in texts:
        message = service.Message(text=text)
        for stage in service.before:
            message = stage(message)
        messages.append(message)
    return [answer.model_dump() for answer in service.predict_batch(model, messages)]


def say(message: str) -> None:
    """A progress line, at once (the output may be a pipe: `make run`, `shipway train`)."""
    print(message, flush=True)


def train(dataset: Path, artifacts: Path, run: shipway.Run | None = None) -> dict:
    """Fit on dataset/train.csv, score valid and test, write artifacts; return the manifest.

    With a `run`, its configuration overrides PARAMS and the metrics are logged to it."""
    dataset, artifacts = Path(dataset), Path(artifacts)
    manifest_path = dataset / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(
            f"no dataset manifest at {manifest_path}; build the dataset first with `python data.py --out {dataset}`."
        )
    dataset_manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    x_train, y_train = read_split(dataset / "train.csv")
    x_valid, y_valid = read_split(dataset / "valid.csv")
    x_test, y_test = read_split(dataset / "test.csv")

    params = run.configure(PARAMS) if run is not None else PARAMS
    if run is not None:
        run.seed(0)  # recorded; lbfgs draws no random numbers, so the model does not depend on it
    dataset_version = (run.record.dataset_version if run is not None else None) or content_version(dataset)
    model = make_pipeline(params)
    say(f"fitting TF-IDF and logistic regression on {len(x_train):,} messages, 77 intents (under a minute)")
    started = time.perf_counter()
    model.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - started
    say(f"fitted in {fit_seconds:.1f} s; scoring {len(x_valid):,} validation and {len(x_test):,} test messages")
    metrics = {
        "valid_accuracy": round(float(model.score(x_valid, y_valid)), 4),
        "test_accuracy": round(float(model.score(x_test, y_test)), 4),
    }

    artifacts.mkdir(parents=True, exist_ok=True)
    model_path = artifacts / "model.skops"
    skops.io.dump(model, model_path)
    # skops builds only the types it trusts (scikit-learn's, numpy's, scipy's); a type of its own
    # would have to be reviewed and trusted by the recipe that loads it: such a type can run code.
    untrusted = skops.io.get_untrusted_types(file=model_path)
    if untrusted:
        raise SystemExit(
            f"the model holds types skops does not trust: {untrusted}; review them, then list them in service.py"
        )
    model_hash = file_sha256(model_path)
    manifest = {
        "version": f"banking77-tfidf-lr-{model_hash[:12]}",
        "dataset_version": dataset_version,
        # The recipe whose load() reads model.skops: service.py loads any recipe's artifacts the same way.
        "recipe": {"name": "tfidf-lr", "defined_in": "train.py"},
        "run_id": run.id if run is not None else uuid.uuid4().hex,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": metrics,
        "fit_seconds": round(fit_seconds, 1),
        "rows": dataset_manifest["rows"],
        # Column order of model.predict_proba.
        "labels": [str(label) for label in model.classes_],
        "params": params,
        "libraries": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "skops": skops.__version__,
        },
    }

    # The drift reference: requests as the service receives them, and its answers on held-out
    # messages (answers on the training messages would be more confident than live ones).
    meta = {key: manifest[key] for key in ("version", "dataset_version", "run_id")}
    say("writing the model, the drift reference and the manifest")
    Profile.build([{"text": t} for t in x_train], service_answers(model, x_valid), meta=meta).save(artifacts)
    if run is not None:
        run.use_dataset(dataset_version)
        run.log_metrics(metrics)
        run.log_metric("fit_seconds", fit_seconds)
        run.set(model_version=manifest["version"])
    # Last, once every artifact is written: the manifest lists each file with its sha256.
    shipway.write_manifest(artifacts, manifest)
    text = (artifacts / "manifest.json").read_text(encoding="utf-8")
    return json.loads(text)  # as written: JSON lists where PARAMS has tuples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=HERE / "build" / "dataset")
    parser.add_argument("--artifacts", type=Path, default=HERE / "artifacts")
    args = parser.parse_args(argv)
    # Under `shipway train` the run exists already and names the folders; otherwise this starts one.
    with shipway.run(HERE, name="tfidf-lr") as run:
        dataset = run.dataset_dir or args.dataset
        if not (dataset / "manifest.json").exists():
            # Run as a script, this file's folder is on sys.path, so its sibling data.py imports.
            from data import build_dataset

            print(f"building the dataset into {dataset}")
            build_dataset(HERE / "data", dataset)
        manifest = train(dataset, run.artifacts_dir or args.artifacts, run)
    print(f"run {manifest['run_id']}: model {manifest['version']} (dataset {manifest['dataset_version']})")
    print(f"  valid accuracy {manifest['metrics']['valid_accuracy']:.4f}")
    print(f"  test accuracy  {manifest['metrics']['test_accuracy']:.4f}")
    print(f"  fit in {manifest['fit_seconds']} s")


if __name__ == "__main__":
    main()
