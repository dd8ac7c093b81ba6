"""The predictions a training run records on its task's held-out examples, kept with the model.

`shipway train` runs the new model through the service's pipeline over the held-out split (the
test split, else the validation split) and writes `held_out.jsonl` into the artifacts folder,
before the manifest lists every file: the file is digest-verified with the model, travels
with it into the registry, and is what the parity check (shipway.core.parity) compares a
candidate's answers with before it takes traffic.

The file is JSON Lines. The first line describes the examples:

    {"held_out": 1, "split": "test", "dataset_version": "...", "examples": 3080}

then one line per example, in the split's order:

    {"id": 0, "input": {"text": "..."}, "output": {"intent": "...", "probability": 0.93, ...}}

`id` is the example's row in the split (from 0), `input` what the pipeline was given, and
`output` the model's answer as JSON (before any rules: rules are versioned apart from the
model), or `"error"` the message of a pipeline error for that example. In `output`, text,
integers and booleans are the labels, compared exactly; other numbers are the scores,
compared within `deploy.parity_tolerance`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shipway.core.decided import Decided
from shipway.core.pipeline import Pipeline
from shipway.errors import ArtifactError, ShipwayError

__all__ = ["FORMAT", "HELD_OUT", "HeldOut", "HeldOutExample", "read_held_out", "run_held_out", "write_held_out"]

HELD_OUT = "held_out.jsonl"
FORMAT = 1


@dataclass(slots=True)
class HeldOutExample:
    id: int
    input: Any
    output: Any = None  # the answer as JSON; None when the pipeline failed on the example
    error: str | None = None


@dataclass(slots=True)
class HeldOut:
    split: str
    dataset_version: str | None
    examples: list[HeldOutExample]


def write_held_out(folder: Path, split: str, dataset_version: str | None, examples: Iterable[HeldOutExample]) -> Path:
    """Write `folder/held_out.jsonl` (list it in the manifest afterwards)."""
    rows = list(examples)
    lines = [
        orjson.dumps({"held_out": FORMAT, "split": split, "dataset_version": dataset_version, "examples": len(rows)})
    ]
    for e in rows:
        line: dict[str, Any] = {"id": e.id, "input": e.input}
        if e.error is None:
            line["output"] = e.output
        else:
            line["error"] = e.error
        lines.append(orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY))
    path = Path(folder) / HELD_OUT
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def read_held_out(folder: Path) -> HeldOut | None:
    """The held-out predictions recorded in `folder`, None if it has none. Read them only from a
    folder `verify_artifacts` passed. ArtifactError names a damaged file."""
    path = Path(folder) / HELD_OUT
    if not path.is_file():
        return None
    lines = path.read_bytes().splitlines()
    try:
        header = orjson.loads(lines[0]) if lines else None
        if not isinstance(header, dict) or header.get("held_out") != FORMAT:
            raise ValueError(f"the first line is not a header of format {FORMAT}")
        examples = []
        for number, line in enumerate(lines[1:], start=2):
            row = orjson.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("id"), int) or "input" not in row:
                raise ValueError(f"line {number} is not an example (an object with an integer id and an input)")
            examples.append(HeldOutExample(row["id"], row["input"], row.get("output"), row.get("error")))
    except ValueError as err:  # orjson.JSONDecodeError is a ValueError
        raise ArtifactError(
            f"{path} is not a file of held-out predictions ({err}); train the model again with `shipway train`, "
            "which writes it."
        ) from None
    if len(examples) != header["examples"]:
        raise ArtifactError(
            f"{path} says it holds {header['examples']} examples but holds {len(examples)}; train the model again."
        )
    return HeldOut(str(header.get("split")), header.get("dataset_version"), examples)


def run_held_out(pipeline: Pipeline, inputs: Sequence[tuple[int, Any]], batch_size: int = 1024) -> list[HeldOutExample]:
    """Run `(id, input)` pairs through `pipeline` in batches: what training records and what the
    parity gate compares it with, computed the same way."""
    out: list[HeldOutExample] = []
    schema = pipeline.output_schema
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start : start + batch_size]
        results = pipeline.run_batch([item for _, item in chunk], errors="return")
        for (id_, item), result in zip(chunk, results, strict=True):
            if isinstance(result, ShipwayError):
                out.append(HeldOutExample(id_, item, error=f"{type(result).__name__}: {result}"))
            else:
                answer = result.model_output if isinstance(result, Decided) else result
                out.append(HeldOutExample(id_, item, schema.to_jsonable(answer)))
    return out
