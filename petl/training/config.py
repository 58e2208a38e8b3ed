"""`TrainConfig`: every knob of petl's training loop, as one JSON-round-tripping dataclass."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

from petl.errors import ConfigError, did_you_mean, unknown_choice

PRECISIONS = ("no", "bf16", "fp16")
NONFINITE = ("error", "skip")
# Default learning rates when TrainConfig.lr is None, by kind of method. Measured on MiniLM
# (docs/benchmark.md, benchmarks/README.md): LoRA learns at 2e-3 to 5e-3 (5e-4 barely moves
# it); full fine-tuning collapsed to one class at 2e-4 on the cl_benchmark streams and
# learns at 1e-4. The lower value of each range is the default: safe on both benchmarks.
PEFT_LR = 2e-3
FULL_LR = 1e-4
SHARDINGS = ("none", "fsdp")  # petl.training.sharding.MODES (kept import-light)
TRACKERS = ("tensorboard",)  # Accelerate trackers petl logs to (petl.training.tracking)
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
        lr: Peak learning rate of AdamW; None: 2e-3 for a PEFT method, 1e-4 for full
            fine-tuning (`default_lr`), resolved when the Learner is set up.
        weight_decay: AdamW weight decay.
        warmup_ratio: Fraction of each task's steps spent warming up linearly.
        scheduler: A transformers scheduler name: linear, cosine, constant, ...
        grad_accum: Micro-batches per optimizer step.
        max_grad_norm: Gradient clipping norm; None disables clipping.
        mixed_precision: "no", "bf16" or "fp16" (passed to Accelerate); "no" takes the
            launcher's (`accelerate launch --mixed_precision`) when there is one.
        max_length: Token limit per example.
        early_stopping_patience: Epochs without validation improvement before a task stops
            (the best epoch's weights are restored); None trains every epoch.
        checkpoint_every: Also checkpoint every N optimizer steps (tasks always checkpoint).
        seed: Seeds weights of new heads, data order, sampling and dropout.
        num_threads: torch CPU threads; None leaves torch's default.
        gradient_checkpointing: Trade compute for activation memory.
        progress: Show progress bars.
        nonfinite: What a non-finite (NaN/inf) loss or gradient does: "error" stops the
            task with a TrainingError naming the step; "skip" drops that optimizer step
            (what mixed-precision users expect) and warns with the count at task end.
        pooling: What sentence classifiers' heads see (petl.features): "auto" (a
            sentence-transformers model's own pooling, else "head"), "head" (the model's
            own classifier input, e.g. BERT's pooler), "mean", "cls" or "last".
        sharding: "none" (DDP: every process holds the whole model) or "fsdp" (FSDP2:
            parameters, gradients and optimizer state sharded across the processes while a
            task trains; petl.training.sharding, docs/distributed.md). No effect with one
            process; `accelerate launch` with an FSDP config turns it on too.
        log_with: "tensorboard" logs losses, learning rate and the accuracy matrix
            through Accelerate's trackers (petl.training.tracking); None logs nothing.
        log_dir: Folder of the event files; None: runs/<date>-<time>-<pid>.
    """

    epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float | None = None
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
    nonfinite: str = "error"
    pooling: str = "auto"
    sharding: str = "none"
    log_with: str | None = None
    log_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "max_length"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"TrainConfig.{name} must be a positive integer, got {value!r}.")
        for name in ("lr", "weight_decay", "warmup_ratio", "max_grad_norm"):
            value = getattr(self, name)
            if value is None and name in ("max_grad_norm", "lr"):  # lr None: the method default
                continue
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                hint = (
                    f" (a number such as {value}, not a string)" if isinstance(value, str) else ""
                )
                raise ConfigError(f"TrainConfig.{name} must be a number{hint}, got {value!r}.")
            if not math.isfinite(value):
                raise ConfigError(f"TrainConfig.{name} must be finite, got {value!r}.")
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"TrainConfig.seed must be an integer >= 0, got {self.seed!r}.")
        for name in ("gradient_checkpointing", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"TrainConfig.{name} must be True or False, got {getattr(self, name)!r}."
                )
        if self.nonfinite not in NONFINITE:
            raise unknown_choice("nonfinite policy", str(self.nonfinite), NONFINITE)
        if self.lr is not None and self.lr <= 0:
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
            if value is not None and (not _is_int(value) or value < 1):
                raise ConfigError(
                    f"TrainConfig.{name} must be a positive integer or None, got {value!r}."
                )
        if self.log_with is not None and self.log_with not in TRACKERS:
            raise ConfigError(
                f"Unknown tracker {self.log_with!r} in TrainConfig.log_with."
                f"{did_you_mean(str(self.log_with), TRACKERS)} Known trackers: "
                f"{', '.join(TRACKERS)}; or None (no logging)."
            )
        if self.log_dir is not None and not isinstance(self.log_dir, str):
            raise ConfigError(f"TrainConfig.log_dir must be a folder path, got {self.log_dir!r}.")
        if self.pooling not in POOLINGS:
            raise unknown_choice("pooling", self.pooling, POOLINGS)
        if self.sharding not in SHARDINGS:
            raise unknown_choice("sharding", self.sharding, SHARDINGS)
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"TrainConfig.mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}."
            )

    def for_method(self, method: Any) -> TrainConfig:
        """This config with `lr` filled in from the method's default when it is None."""
        if self.lr is not None:
            return self
        return dataclasses.replace(self, lr=default_lr(method))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A TrainConfig from a dict of settings; unknown keys are refused with the valid ones."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(
                f"Unknown training setting(s) {unknown}. Valid settings: {', '.join(sorted(valid))}."
            )
        return cls(**data)


def _is_int(value: Any) -> bool:
    # bool is a subclass of int: epochs=True must not mean one epoch
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def default_lr(method: Any) -> float:
    """The default learning rate: `FULL_LR` for full fine-tuning (method None), else
    `PEFT_LR`."""
    return FULL_LR if method is None else PEFT_LR
