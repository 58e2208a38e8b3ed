"""`TrainConfig`: every knob of petl's training loop, as one JSON-round-tripping dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from petl.errors import ConfigError, unknown_choice

PRECISIONS = ("no", "bf16", "fp16")
POOLINGS = ("auto", "head", "mean", "cls", "last")  # petl.features (kept import-light)
# transformers schedulers that need nothing but warmup and total steps (reduce_lr_on_plateau
# needs a metric per step, the *_min_lr ones extra arguments).
SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
)


@dataclass
class TrainConfig:
    """Training settings, shared by every task of a stream.

    Attributes:
        epochs: Passes over each task's training data.
        batch_size: Global batch size (split across processes under `accelerate launch`).
        eval_batch_size: Batch size for evaluation.
        lr: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_ratio: Fraction of each task's steps spent warming up linearly.
        scheduler: A transformers scheduler name: linear, cosine, constant, ...
        grad_accum: Micro-batches per optimizer step.
        max_grad_norm: Gradient clipping norm; None disables clipping.
        mixed_precision: "no", "bf16" or "fp16" (passed to Accelerate).
        max_length: Token limit per example.
        early_stopping_patience: Epochs without validation improvement before a task stops
            (the best epoch's weights are restored); None trains every epoch.
        checkpoint_every: Also checkpoint every N optimizer steps (tasks always checkpoint).
        seed: Seeds weights of new heads, data order, sampling and dropout.
        num_threads: torch CPU threads; None leaves torch's default.
        gradient_checkpointing: Trade compute for activation memory.
        progress: Show progress bars.
        pooling: What sentence classifiers' heads see (petl.features): "auto" (a
            sentence-transformers model's own pooling, else "head"), "head" (the model's
            own classifier input, e.g. BERT's pooler), "mean", "cls" or "last".
    """

    epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06
    scheduler: str = "linear"
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "no"
    max_length: int = 128
    early_stopping_patience: int | None = None
    checkpoint_every: int | None = None
    seed: int = 0
    num_threads: int | None = None
    gradient_checkpointing: bool = False
    progress: bool = True
    pooling: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"TrainConfig.{name} must be a positive integer, got {value!r}.")
        if self.lr <= 0:
            raise ConfigError(f"TrainConfig.lr must be positive, got {self.lr!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(
                f"TrainConfig.warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}."
            )
        if self.scheduler not in SCHEDULERS:
            raise unknown_choice("scheduler", self.scheduler, SCHEDULERS)
        if self.weight_decay < 0:
            raise ConfigError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}.")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ConfigError(
                f"TrainConfig.max_grad_norm must be positive or None, got {self.max_grad_norm!r}."
            )
        for name in ("early_stopping_patience", "checkpoint_every", "num_threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(
                    f"TrainConfig.{name} must be a positive integer or None, got {value!r}."
                )
        if self.pooling not in POOLINGS:
            raise unknown_choice("pooling", self.pooling, POOLINGS)
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"TrainConfig.mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(
                f"Unknown training setting(s) {unknown}. Valid settings: {', '.join(sorted(valid))}."
            )
        return cls(**data)
