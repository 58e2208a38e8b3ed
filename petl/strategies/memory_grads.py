"""Gradients on remembered examples, for the gradient-projection strategies (A-GEM, GEM),
and the shared pieces of strategies that keep a memory of examples.

`memory_gradient` evaluates the training loss of some rows with the model in eval mode
(no dropout) and returns its gradient with `torch.autograd.grad`, which leaves the
parameters' `.grad` (the step being taken) untouched and fires no DDP hooks. Every
process computes it on all the rows, so every process gets the same reference gradient
and no communication is needed. `flat`/`unflat` move between per-parameter gradients and
the one vector the projections work on."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def sample_items(items: list[Any], n: int, seed: int, *keys: int) -> list[Any]:
    """n items drawn without replacement (all if fewer), by a generator seeded with the
    run's seed and `keys` (e.g. the global step): identical on every process and after
    a resume."""
    if len(items) <= n:
        return list(items)
    pick = np.random.default_rng([seed, *keys]).choice(len(items), n, replace=False)
    return [items[i] for i in sorted(pick.tolist())]


def memory_gradient(learner: Any, rows: list[Any]) -> dict[str, torch.Tensor]:
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


def flat(grads: dict[str, torch.Tensor | None], like: dict[str, torch.Tensor]) -> torch.Tensor:
    """One float32 vector of `grads` in the order of `like` (missing: zeros)."""
    return torch.cat(
        [
            (g if (g := grads.get(n)) is not None else torch.zeros_like(p)).reshape(-1).float()
            for n, p in like.items()
        ]
    )


def current_grads(learner: Any) -> dict[str, torch.Tensor | None]:
    return {n: p.grad for n, p in learner.trainable_parameters().items()}


def set_grads(learner: Any, vector: torch.Tensor) -> None:
    """Writes a flat gradient back into the parameters' `.grad`."""
    start = 0
    for p in learner.trainable_parameters().values():
        size = p.numel()
        g = vector[start : start + size].view_as(p).to(p.dtype)
        if p.grad is None:
            p.grad = g.clone()
        else:
            p.grad.copy_(g)
        start += size
