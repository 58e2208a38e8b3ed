"""Gradients on remembered examples, for the gradient-projection strategies (A-GEM, GEM),
and the shared pieces of strategies that keep a memory of examples.

`memory_gradient` evaluates the training loss of some rows with the model in eval mode
(no dropout) and returns its gradient with `torch.autograd.grad`, which leaves the
parameters' `.grad` (the step being taken) untouched and fires no DDP hooks. Every
process computes it on all the rows, so every process gets the same reference gradient
and no communication is needed. `flat`/`unflat` move between per-parameter gradients and
the one vector the projections work on.

Under FSDP (petl.training.sharding) the hooks work on FULL tensors: `memory_gradient` runs
inside `sharding.gathered` (the model holds all-gathered weights), `current_grads`
gathers the gradient shards, and `set_grads` keeps each process's shard of the projected
vector. The projection is then computed identically on every process, as under DDP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


def sample_items(items: list[Any], n: int, seed: int, *keys: int) -> list[Any]:
    """n items drawn without replacement (all if fewer), by a generator seeded with the
    run's seed and `keys` (e.g. the global step): identical on every process and after
    a resume."""
    if len(items) <= n:
        return list(items)
    pick = np.random.default_rng([seed, *keys]).choice(len(items), n, replace=False)
    return [items[i] for i in sorted(pick.tolist())]


def memory_gradient(learner: LearnerView, rows: list[Any]) -> dict[str, torch.Tensor]:
    """Gradient of the mean training loss over `rows` w.r.t. the trainable parameters
    (zeros where a parameter is unused)."""
    params = learner.trainable_parameters()
    names, tensors = list(params), list(params.values())
    total = [torch.zeros_like(p) for p in tensors]
    model, acc = learner.model, learner.accelerator
    was = model.training
    model.eval()
    for batch in learner.batches(rows):
        with acc.autocast():
            loss = learner.family.loss(model(batch), batch) * (len(batch["labels"]) / len(rows))
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for acc_g, g in zip(total, grads, strict=True):
            if g is not None:
                acc_g += g
    model.train(was)
    return dict(zip(names, total, strict=True))


def flat(
    grads: Mapping[str, torch.Tensor | None], like: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """One float32 vector of `grads` in the order of `like` (missing: zeros)."""
    return torch.cat(
        [
            (g if (g := grads.get(n)) is not None else torch.zeros_like(p)).reshape(-1).float()
            for n, p in like.items()
        ]
    )


def current_grads(learner: LearnerView) -> dict[str, torch.Tensor]:
    """The step's full gradients (gathered from shards under FSDP; zeros where None)."""
    from petl.training import sharding

    return {
        n: sharding.full(p.grad)
        if p.grad is not None
        else torch.zeros(p.shape, dtype=p.dtype, device=p.device)
        for n, p in learner.trainable_parameters().items()
    }


def reference_gradient(learner: LearnerView, rows: list[Any]) -> dict[str, torch.Tensor]:
    """`memory_gradient` on the full weights (all-gathered while it runs under FSDP)."""
    from petl.training import sharding

    with sharding.gathered(learner):
        return memory_gradient(learner, rows)


def set_grads(learner: LearnerView, vector: torch.Tensor) -> None:
    """Writes a flat (full) gradient back into the parameters' `.grad` (each process
    keeps its shard under FSDP)."""
    from petl.training import sharding

    start = 0
    for p in learner.trainable_parameters().values():
        size = p.numel()  # the full size, also for a sharded parameter
        sharding.assign_grad(p, vector[start : start + size])
        start += size
