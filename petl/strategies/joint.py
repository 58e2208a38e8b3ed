"""Joint (multitask) training: at task t, train on every task seen so far. Not a continual
method but the usual upper bound it is compared against."""

from __future__ import annotations

from typing import TYPE_CHECKING

from petl.strategies.base import Strategy

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class Joint(Strategy):
    """Trains task t on the union of the training sets of tasks 0..t."""

    name = "joint"

    def train_items(
        self, learner: LearnerView, t: int, items: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        earlier = [(k, i) for k in range(t) for i in range(len(learner.rows(k)))]
        return earlier + items
