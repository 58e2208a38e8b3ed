"""Task families: what kind of output a stream's tasks ask for, and everything that depends
on it.

A family owns five things, and the rest of petl (stream, loop, strategies, checkpoints,
metrics) is shared:

- the model: how a transformers backbone becomes the model petl trains (task heads or
  the LM head itself);
- the rows: how a task's examples are tokenized, and how rows are collated into batches;
- the training loss from the model's output and a batch;
- predictions (with a per-example confidence, for routing rules without task ids);
- the task score in the T x T matrix and its name, plus per-class (per-type) details.

Families:
    classification  one label per text (accuracy); `ClassificationFamily`
    tokens          one BIO tag per word, class-incremental NER (entity-level F1, seqeval);
                    `TokenFamily`
    generation      instruction + input -> answer text on a causal LM (exact match);
                    `GenerationFamily`

A `Stream` names its family (`stream.family`); the `Learner` builds the default family
object for it, or takes one with options (`Learner(..., family=GenerationFamily(
decoding="labels"))`). See docs/task-families.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from petl.errors import ConfigError, unknown_choice

if TYPE_CHECKING:
    from petl.stream import Task

FAMILY_NAMES = ("classification", "tokens", "generation")


@runtime_checkable
class Family(Protocol):
    """The interface of a task family. Hooks receive the `Learner` (its public helpers:
    `rows`, `batches`, `label_ids`, `stream`, `model`, `config`, `tokenizer`)."""

    name: str
    #: transformers Auto class used when the Learner is given a model path.
    auto_class: str

    def config(self) -> dict[str, Any]:
        """The family's options (echoed into checkpoint fingerprints)."""
        ...

    def metric(self, task: Task) -> str:
        """Name of the score of `task` in the results matrix."""
        ...

    def build_model(self, learner: Any, backbone: nn.Module) -> nn.Module:
        """Turns the loaded backbone into the trained model; applies the PEFT method
        through `learner.apply_method(backbone)`."""
        ...

    def encode(self, learner: Any, t: int, examples: Sequence[Any]) -> list[Any]:
        """Tokenizes examples of task t into rows (each with `.task` and `.label`)."""
        ...

    def collate(self, rows: Sequence[Any], pad_id: int) -> dict[str, torch.Tensor]:
        """Pads rows into a batch (with "labels" and "task_ids")."""
        ...

    def loss(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor], reduction: str = "mean"
    ) -> torch.Tensor:
        """The training loss of the model's output on a batch: the mean over its targets
        (examples, tags or answer tokens), or with "sum" the sum over examples of each
        example's loss (the loop rescales an uneven last batch of a multi-process run)."""
        ...

    def predict(
        self, learner: Any, t: int, rows: Sequence[Any], head: int | None = None
    ) -> tuple[Any, np.ndarray]:
        """Predictions for rows of task t, and a confidence per row (higher = surer).
        `head` routes through another task's head (per-task heads only)."""
        ...

    def score(self, learner: Any, t: int, split: str, preds: Any) -> float:
        """The task score in [0, 1] of predictions on task t's split."""
        ...

    def details(self, learner: Any, t: int, split: str, preds: Any) -> dict[str, float]:
        """Per-class accuracy / per-type F1 / per-answer exact match."""
        ...


def get_family(family: str | Family | None, stream_family: str = "classification") -> Family:
    """The family object for a stream: `family` itself when given (its name must match the
    stream's), else the default object of `stream_family`."""
    if family is None or isinstance(family, str):
        name = family or stream_family
        if name != stream_family:
            raise ConfigError(
                f"The stream's tasks are {stream_family!r} but family={name!r} was given."
            )
        if name == "classification":
            from petl.families.classification import ClassificationFamily

            return ClassificationFamily()
        if name == "tokens":
            from petl.families.tokens import TokenFamily

            return TokenFamily()
        if name == "generation":
            from petl.families.generation import GenerationFamily

            return GenerationFamily()
        raise unknown_choice("task family", name, FAMILY_NAMES)
    if not isinstance(family, Family):
        raise ConfigError(f"family must be a name or a family object, got {type(family).__name__}.")
    if family.name != stream_family:
        raise ConfigError(
            f"The stream's tasks are {stream_family!r} but a {family.name!r} family was given."
        )
    return family


__all__ = ["FAMILY_NAMES", "Family", "get_family"]
