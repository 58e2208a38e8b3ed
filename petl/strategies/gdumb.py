"""GDumb (Prabhu et al. 2020): a greedy class-balanced memory is the only training data.
Each task's examples are offered to the memory (earliest first, the budget split evenly
over the classes seen so far), then the model's trainable parameters are reset to their
initial values and trained on the memory alone. Deliberately simple: the baseline that
asks how much a continual method beats "store a balanced sample, train from scratch"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from petl.strategies.base import Strategy
from petl.strategies.cumulative import initial_state, restore
from petl.strategies.replay import Replay, classes_of

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class GDumb(Strategy):
    """GDumb. Args: memory (examples kept)."""

    name = "gdumb"

    def __init__(self, memory: int = 200) -> None:
        self._buffer = Replay(memory=memory, policy="first_come")
        self.memory = memory
        self._init: dict[str, torch.Tensor] = {}  # rebuilt by setup, also on resume

    def setup(self, learner: LearnerView) -> None:
        self._init = initial_state(learner)

    def train_items(self, learner: LearnerView, t: int, items: list[Any]) -> list[Any]:
        rows = learner.item_rows(items)
        self._buffer.add(items, classes_of(learner, t, rows), t, learner)
        return self._buffer.buffer

    def before_task(self, learner: LearnerView, t: int) -> None:
        restore(learner, self._init)

    def state_dict(self) -> dict[str, Any]:
        return self._buffer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._buffer.load_state_dict(state)
