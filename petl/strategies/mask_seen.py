"""Seen-class logit masking: the training loss of an example sees only its own task's
classes.

In class-incremental learning with one growing head, the cross-entropy of task t over all
seen classes pushes every earlier class's logit down on task t's examples (they are all
negatives there), so after a few tasks the newest classes win every prediction. Masking the
other tasks' columns out of each example's softmax ("separated softmax", as in SS-IL, Ahn
et al. 2021, and SLCA's training step) leaves old rows of the head untouched by new data;
the backbone still drifts, which other strategies (EWC, LwF, a slow learning rate) address.

The mask is per example, by the example's own task id, so replayed examples of task k are
trained on task k's classes. It changes only the training loss: prediction still scores
every seen class (class-incremental) or the classes of the given task (task-incremental,
where the heads already route by task id and the mask changes nothing). Domain-incremental
tasks share one label set, so there the mask changes nothing either."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from petl.errors import ConfigError
from petl.strategies.base import Strategy

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


def allowed_columns(learner: LearnerView) -> torch.Tensor:
    """Boolean [tasks, columns] table: which logit columns belong to each task's classes."""
    heads = learner.model.heads
    width = max(heads.block_sizes) if heads.mode == "route" else sum(heads.block_sizes)
    table = torch.zeros(len(learner.stream), max(width, 1), dtype=torch.bool)
    for k in range(len(learner.stream)):
        table[k, list(learner.label_ids(k).values())] = True
    return table


def mask_to_own_task(
    learner: LearnerView, batch: Any, logits: torch.Tensor, table: torch.Tensor
) -> Any:
    """`logits` with every column outside the row's own task's classes at the dtype's
    minimum (a softmax weight of 0, and no gradient), per row (and per token)."""
    keep = table.to(logits.device)[batch["task_ids"].to(logits.device), : logits.shape[-1]]
    if logits.dim() == 3:  # tokens: [batch, length, columns]
        keep = keep[:, None, :]
    return logits.masked_fill(~keep, torch.finfo(logits.dtype).min)


class MaskSeen(Strategy):
    """Trains each example only against its own task's classes (seen-class masking).

    Composes with any other strategy: `strategies=[petl.EWC(), petl.MaskSeen()]`.
    No settings and no state; it changes the training loss only."""

    name = "mask_seen"

    def __init__(self) -> None:
        self._table: torch.Tensor | None = None

    def setup(self, learner: LearnerView) -> None:
        if getattr(learner.model, "heads", None) is None:
            raise ConfigError(
                f"MaskSeen masks columns of petl's classification heads; the "
                f"{learner.family.name!r} family has none. Use it with the classification "
                "or tokens family."
            )
        self._table = allowed_columns(learner)

    def train_logits(self, learner: LearnerView, batch: Any, logits: torch.Tensor) -> torch.Tensor:
        assert self._table is not None, "setup() builds the mask table"
        return mask_to_own_task(learner, batch, logits, self._table)
