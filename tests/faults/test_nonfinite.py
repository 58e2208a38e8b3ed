"""The non-finite guard: a NaN loss, an infinite gradient or weights blown up by a huge
learning rate stop the task with a TrainingError naming the step and task (never a result
computed from NaN weights); TrainConfig(nonfinite="skip") drops such steps instead."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import petl
from petl.errors import TrainingError
from tests.cl.cl_data import make_bert
from tests.faults.fault_kit import CONFIG, stream


class Poison(petl.Strategy):
    """Makes the loss NaN (or only its gradient infinite) at given training batches (counted
    from 1; one optimizer step each, grad_accum being 1)."""

    name = "poison"

    def __init__(self, batches: tuple[int, ...], kind: str = "nan_loss") -> None:
        self._batches, self._kind, self._seen = batches, kind, 0

    def loss(self, learner: Any, batch: Any, logits: torch.Tensor, loss: torch.Tensor) -> Any:
        self._seen += 1
        if self._seen not in self._batches:
            return loss
        if self._kind == "nan_loss":
            return loss * math.nan
        return loss + InfGrad.apply(logits)


class InfGrad(torch.autograd.Function):
    """Adds 0 to the loss but an infinite gradient to its input."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        return x.sum() * 0

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.full(ctx.shape, math.inf)


def learner(tok: Any, strategy: Any = None, **config: Any) -> petl.Learner:
    return petl.Learner(
        make_bert(seed=2),
        tok,
        method="lora",
        method_options={"r": 2},
        strategies=[strategy] if strategy else None,
        config=petl.TrainConfig(**{**CONFIG, **config}),
    )


@pytest.mark.parametrize("kind", ["nan_loss", "inf_grad"])
def test_nonfinite_step_stops_the_task_naming_step_and_task(tok: Any, kind: str) -> None:
    what = "loss is nan" if kind == "nan_loss" else "a gradient is not finite"
    with pytest.raises(TrainingError, match=rf"step 6 \(task 1 't1'\): the {what}.*lower lr"):
        learner(tok, Poison((6,), kind)).fit(stream())


def test_huge_learning_rate_is_stopped_not_reported(tok: Any) -> None:
    with pytest.raises(TrainingError, match=r"step \d+ \(task 0 't0'\).*lower lr \(now 1e\+30\)"):
        learner(tok, lr=1e30, max_grad_norm=None).fit(stream())


def test_skip_policy_drops_the_steps_and_warns(tok: Any) -> None:
    lrn = learner(tok, Poison((2, 6), "inf_grad"), nonfinite="skip")
    with pytest.warns(UserWarning, match=r"Task 0 't0': 1 optimizer step\(s\) skipped"):
        results = lrn.fit(stream())
    assert lrn.global_step == 10  # 12 batches, 2 skipped steps (not counted)
    assert all(torch.isfinite(p).all() for p in lrn.trainable_parameters().values())
    assert np_finite(results.accuracy)


def np_finite(matrix: Any) -> bool:
    import numpy as np

    return bool(np.isfinite(matrix).all())
