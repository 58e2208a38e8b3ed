"""ER-ACE (Caccia et al. 2022, "New insights on reducing abrupt representation change in
online continual learning"): experience replay with an asymmetric cross-entropy. The
incoming batch's loss only sees the logits of the classes present in that batch, so new
classes do not push the old ones' logits down; a replayed batch from the memory trains
on all classes:
    CE(logits restricted to the batch's classes, y) + CE(f(x_mem), y_mem).
Classes present are taken over the global batch (a class-presence vector summed across
processes), so 1 and N processes mask the same columns. The replay batch is drawn per
step by a generator seeded with the run's seed and the global step, identical on every
process. As in Avalanche's ER_ACE, a task's examples are offered to the memory (reservoir
by default) before it trains, so replayed batches mix old and new classes (and a memory
of the same size holds fewer old examples than Replay's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from petl.errors import ConfigError, IncompatibleModelError
from petl.strategies.base import Strategy
from petl.strategies.der import memory_batch
from petl.strategies.memory_grads import sample_items
from petl.strategies.replay import Replay
from petl.strategies.storage import Storage

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class ERACE(Strategy):
    """ER-ACE. Args: memory, batch_size (replay batch; default the training batch),
    policy, seed."""

    name = "er_ace"

    def __init__(
        self,
        memory: int = 200,
        batch_size: int | None = None,
        policy: str | Storage = "reservoir",
        seed: int = 0,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"ERACE batch_size must be >= 1, got {batch_size!r}.")
        self._buffer = Replay(memory=memory, policy=policy, seed=seed)
        self.memory, self.batch_size, self.seed = memory, batch_size, seed
        self.policy = self._buffer.policy

    def setup(self, learner: LearnerView) -> None:
        if not learner.family.label_per_row:
            raise IncompatibleModelError(
                "ER-ACE masks class logits: it needs the classification family, got "
                f"{learner.family.name!r}. Use Replay or DER for other families."
            )

    def loss(
        self, learner: LearnerView, batch: Any, logits: Any, loss: torch.Tensor
    ) -> torch.Tensor:
        labels = batch["labels"]
        present = torch.zeros(logits.shape[-1], device=logits.device)
        present[labels] = 1.0 if learner.row_weight else 0.0  # not a padding-only share
        acc = learner.accelerator
        if acc.num_processes > 1:
            present = acc.reduce(present, reduction="sum")
        masked = logits.float().masked_fill(present == 0, float("-inf"))
        # replace the family's cross-entropy by the asymmetric one, with the same row weights
        ce = F.cross_entropy(logits.float(), labels, reduction="sum")
        ace = F.cross_entropy(masked, labels, reduction="sum")
        loss = loss + (ace - ce) * learner.row_weight
        items = self._buffer.buffer
        if not items:
            return loss
        size = self.batch_size or learner.config.batch_size
        mem = memory_batch(learner, sample_items(items, size, self.seed, learner.global_step))
        return loss + learner.family.loss(learner.model(mem), mem)

    def before_task(self, learner: LearnerView, t: int) -> None:
        # As Avalanche's ER_ACE: the task's own examples join the memory before it trains,
        # so replayed batches also hold new classes and push old logits down on them.
        self._buffer.after_task(learner, t)

    def state_dict(self) -> dict[str, Any]:
        return self._buffer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._buffer.load_state_dict(state)
