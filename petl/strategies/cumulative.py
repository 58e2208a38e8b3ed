"""Cumulative training: at task t, train on every task seen so far, continuing from the
model of task t-1 (Avalanche's `Cumulative`); with `reset=True` the trainable parameters
start each task from their initial values instead, so the last task is joint training on
the whole stream. Not a continual method but the usual upper bound, at a cost that grows
with the stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from petl.strategies.base import Strategy

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


def initial_state(learner: LearnerView) -> dict[str, torch.Tensor]:
    """Every parameter that trains in some task: the method's and all head blocks."""
    return {
        n: p.detach().clone()
        for n, p in learner.model.named_parameters()
        if p.requires_grad or n.startswith("heads.")
    }


def restore(learner: LearnerView, state: dict[str, torch.Tensor]) -> None:
    own = dict(learner.model.named_parameters())
    with torch.no_grad():
        for n, v in state.items():
            own[n].copy_(v)


class Cumulative(Strategy):
    """Trains task t on tasks 0..t. Args: reset (restart from the initial weights)."""

    name = "cumulative"

    def __init__(self, reset: bool = False) -> None:
        self.reset = reset
        self._init: dict[str, torch.Tensor] = {}  # rebuilt by setup, also on resume

    def setup(self, learner: LearnerView) -> None:
        self._init = initial_state(learner) if self.reset else {}

    def train_items(self, learner: LearnerView, t: int, items: list[Any]) -> list[Any]:
        earlier = [(k, i) for k in range(t) for i in range(len(learner.rows(k)))]
        return earlier + items

    def before_task(self, learner: LearnerView, t: int) -> None:
        if self.reset and t > 0:
            restore(learner, self._init)
