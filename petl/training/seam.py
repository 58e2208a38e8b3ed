"""`LearnerView`: what strategies, task families and the training loop may use of a
learner. `Learner` provides it, and so does the Trainer integration's `TrainerLearner`
(petl.integrations.transformers), so a strategy written against it runs on both.

Everything here is public; nothing outside `Learner` (and petl.training, its own
package) reads or writes a learner's private attributes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from petl.training.data import Item

if TYPE_CHECKING:
    from petl.families import Family
    from petl.strategies.protocol import Hooks
    from petl.stream import Stream
    from petl.training.config import TrainConfig


class LearnerView(Protocol):
    """The learner as a strategy hook, a family or the loop sees it."""

    #: The trained model: `ClassifierModel` (task heads) or `LMModel`, built by the family.
    model: Any
    stream: Stream
    family: Family
    config: TrainConfig
    tokenizer: Any
    pad_id: int
    strategies: list[Any]
    #: The PEFT method (a name, a config object, or None for full fine-tuning).
    method: Any
    #: What the model was loaded from (a path or name), or the model object given.
    source: Any
    #: The current task's training items (task, example index), strategies' buffers added.
    items: list[Item]
    task_index: int
    global_step: int
    global_step_in_task: int
    #: Each row's weight in the current batch's loss (an uneven last batch weighs less).
    row_weight: float

    @property
    def accelerator(self) -> Any: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def per_task_heads(self) -> bool: ...

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Trainable parameters by name, on the unwrapped model."""
        ...

    def label_ids(self, task: int) -> dict[str, int]:
        """Label name -> logit column of task `task`."""
        ...

    def rows(self, task: int, split: str = "train") -> list[Any]:
        """The family's encoded rows of a task's split."""
        ...

    def item_rows(self, items: Sequence[Item]) -> list[Any]:
        """Training rows of items (task, example index)."""
        ...

    def batches(
        self, rows: Sequence[Any], batch_size: int | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Local batches of rows, on the device (each with "positions")."""
        ...

    def logits_for(self, rows: Sequence[Any]) -> torch.Tensor:
        """The current model's outputs for rows, on CPU."""
        ...

    def predictions(self, task: int, split: str = "test") -> Any:
        """Predictions for a task's split (a strategy's rule, else the family's)."""
        ...

    def score(self, task: int, split: str = "test") -> float:
        """The task's own metric on a split."""
        ...


class TrainingLearner(LearnerView, Protocol):
    """What the loop and families also use while building and training: the dispatcher
    of strategy hooks, the PEFT method, and the prepared model."""

    hooks: Hooks

    def apply_method(self, backbone: nn.Module) -> nn.Module:
        """Gradient checkpointing and the PEFT method on a backbone."""
        ...

    def use_training_model(self, model: nn.Module | None) -> None:
        """The prepared model that `logits_for` runs while a task trains (None after)."""
        ...


__all__ = ["LearnerView", "TrainingLearner"]
